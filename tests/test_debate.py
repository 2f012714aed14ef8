"""The LCEL debate chain over a live model: batched across scenarios, same words as one-at-a-time."""

from __future__ import annotations

import pytest

from harness import EMBEDDED, GenerationSpec, ModelSpec, Scenario
from harness.debate import build_chain, first_line, generation_threads, hold_debates
from harness.model import load

SCENARIOS = (
    Scenario("monthly-kaggle", "月刊Kaggleは役に立たない", turns=4),
    Scenario("shake-up", "Private LBのshake upはただの運ゲーだ", turns=3),
    Scenario("real-work", "Kaggleの経験は実務で役に立たない", ("Kaggleアンチ", "Kaggleファン", "人事担当"), turns=3),
)


@pytest.fixture(scope="module")
def model_and_tokenizer():
    model, tokenizer = load(ModelSpec(EMBEDDED), "cpu")
    model.eval()
    return model, tokenizer


def test_a_turn_ends_at_the_line_break() -> None:
    assert first_line(" 月刊Kaggleは読んでる。\nKaggleファン：え？") == "月刊Kaggleは読んでる。"


def test_batched_debates_equal_one_scenario_at_a_time_under_greedy(model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    generation = GenerationSpec(max_new_tokens=24)
    batched, _ = hold_debates(build_chain(model, tokenizer, generation, batch_size=len(SCENARIOS)), SCENARIOS)
    alone = [hold_debates(build_chain(model, tokenizer, generation, batch_size=1), (s,))[0][0] for s in SCENARIOS]
    assert batched == alone
    assert [len(c.turns) for c in batched] == [4, 3, 3]
    assert [t.speaker for t in batched[2].turns] == ["Kaggleアンチ", "Kaggleファン", "人事担当"]
    assert any(t.text for c in batched for t in c.turns), "the pretrained model should say something"


def test_one_generation_call_per_turn_for_all_scenarios(model_and_tokenizer, monkeypatch) -> None:
    model, tokenizer = model_and_tokenizer
    batch_sizes = []
    original = model.generate

    def counting_generate(*args, **kwargs):
        batch_sizes.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "generate", counting_generate)
    chain = build_chain(model, tokenizer, GenerationSpec(max_new_tokens=8), batch_size=len(SCENARIOS))
    _, trace = hold_debates(chain, SCENARIOS)
    assert batch_sizes == [3, 3, 3, 1]
    llm = [e for e in trace if e["component"] == "llm"]
    assert len(llm) == 10 and all(e["latency_s"] > 0 and e["input"].endswith("：") for e in llm)
    first = next(e for e in trace if e["component"] == "turn" and e["scenario"] == "shake-up" and e["turn"] == 1)
    assert first["input"]["speaker"] == "Kaggleファン" and first["input"]["history"].startswith("Kaggleアンチ：")


def test_sampling_is_seeded(model_and_tokenizer) -> None:
    import torch

    model, tokenizer = model_and_tokenizer
    chain = build_chain(model, tokenizer, GenerationSpec(max_new_tokens=16, do_sample=True), batch_size=3)
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        runs.append(hold_debates(chain, SCENARIOS)[0])
    assert runs[0] == runs[1]


def test_a_small_model_generates_on_one_thread_and_the_setting_is_restored(model_and_tokenizer) -> None:
    import torch

    model, tokenizer = model_and_tokenizer
    before = torch.get_num_threads()
    chain = build_chain(model, tokenizer, GenerationSpec(max_new_tokens=24), batch_size=len(SCENARIOS))
    with torch.no_grad(), generation_threads(model):
        assert torch.get_num_threads() == 1
        batched, _ = hold_debates(chain, SCENARIOS)
    assert torch.get_num_threads() == before
    one = build_chain(model, tokenizer, GenerationSpec(max_new_tokens=24), batch_size=1)
    with torch.no_grad(), generation_threads(model):
        assert batched == [hold_debates(one, (s,))[0][0] for s in SCENARIOS]
