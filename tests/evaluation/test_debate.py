"""The LCEL debate chain over a live model: batched across scenarios, same words as one-at-a-time."""

from __future__ import annotations

import pytest

from harness import EMBEDDED, GenerationSpec, ModelSpec, Scenario
from harness.evaluation import debate, generation
from harness.evaluation.debate import build_chain, build_reference_chain, first_line, generation_threads, hold_debates
from harness.training.model import load

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


def _reference(model, tokenizer, generation: GenerationSpec) -> list:
    """The stock route: HuggingFacePipeline, one scenario at a time, the whole transcript re-read every turn."""
    chain = build_reference_chain(model, tokenizer, generation)
    return [hold_debates(chain, (s,))[0][0] for s in SCENARIOS]


@pytest.mark.parametrize("penalty", [1.0, 1.3])
def test_batched_debates_say_what_the_stock_pipeline_says_under_greedy(model_and_tokenizer, penalty) -> None:
    model, tokenizer = model_and_tokenizer
    generation = GenerationSpec(max_new_tokens=24, repetition_penalty=penalty)
    batched, _ = hold_debates(build_chain(model, tokenizer, generation), SCENARIOS)
    assert batched == _reference(model, tokenizer, generation)
    assert [len(c.turns) for c in batched] == [4, 3, 3]
    assert [t.speaker for t in batched[2].turns] == ["Kaggleアンチ", "Kaggleファン", "人事担当"]
    assert any(t.text for c in batched for t in c.turns), "the pretrained model should say something"


def test_one_generation_call_per_turn_for_all_scenarios(model_and_tokenizer, monkeypatch) -> None:
    model, tokenizer = model_and_tokenizer
    batch_sizes = []
    original = debate.generate_counted

    def counting_generate(model, tokenizer, prompts, *args):
        batch_sizes.append(len(prompts))
        return original(model, tokenizer, prompts, *args)

    monkeypatch.setattr(debate, "generate_counted", counting_generate)
    chain = build_chain(model, tokenizer, GenerationSpec(max_new_tokens=8))
    _, trace = hold_debates(chain, SCENARIOS)
    assert batch_sizes == [3, 3, 3, 1]
    llm = [e for e in trace if e["component"] == "llm"]
    assert len(llm) == 10 and all(e["latency_s"] > 0 and e["input"].endswith("：") for e in llm)
    first = next(e for e in trace if e["component"] == "turn" and e["scenario"] == "shake-up" and e["turn"] == 1)
    assert first["input"]["speaker"] == "Kaggleファン" and first["input"]["history"].startswith("Kaggleアンチ：")


def test_each_trace_event_has_its_start_tokens_and_no_error(model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    _, trace = hold_debates(build_chain(model, tokenizer, GenerationSpec(max_new_tokens=8)), SCENARIOS)
    for event in trace:
        prompt = event["input"] if event["component"] == "llm" else None
        if prompt is not None:  # the model reads the whole prompt (character tokens) and writes 1..8 tokens
            assert event["tokens_in"] == len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        assert 1 <= event["tokens_out"] <= 8 and event["error"] is None
    turns = sorted((e for e in trace if e["component"] == "turn"), key=lambda e: e["start_s"])
    assert [e["turn"] for e in turns] == sorted(e["turn"] for e in turns), "turns start in order"
    for turn in turns:  # a turn's model call lies inside it, with the same token counts
        (llm,) = [
            e
            for e in trace
            if e["component"] == "llm" and (e["scenario"], e["turn"]) == (turn["scenario"], turn["turn"])
        ]
        assert turn["start_s"] <= llm["start_s"] and llm["latency_s"] <= turn["latency_s"]
        assert (llm["tokens_in"], llm["tokens_out"]) == (turn["tokens_in"], turn["tokens_out"])


def test_a_failing_model_call_is_traced_with_its_error(model_and_tokenizer, monkeypatch) -> None:
    model, tokenizer = model_and_tokenizer

    def broken(*args):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(debate, "generate_counted", broken)
    recorder = debate.TraceRecorder()
    with pytest.raises(RuntimeError):
        debate._turn(
            build_chain(model, tokenizer, GenerationSpec()), SCENARIOS[:1], 0, {"monthly-kaggle": []}, recorder
        )
    assert {(e["component"], e["error"]) for e in recorder.events} == {
        ("llm", "RuntimeError: CUDA out of memory"),
        ("turn", "RuntimeError: CUDA out of memory"),
    }


def test_a_later_turn_feeds_the_model_only_what_earlier_turns_did_not(model_and_tokenizer, monkeypatch) -> None:
    model, tokenizer = model_and_tokenizer
    calls = []
    original = generation._assemble

    def spying_assemble(reused, chunks, pad_id):
        calls.append(([length for _, length in reused], [len(chunk) for chunk in chunks]))
        return original(reused, chunks, pad_id)

    monkeypatch.setattr(generation, "_assemble", spying_assemble)
    hold_debates(build_chain(model, tokenizer, GenerationSpec(max_new_tokens=16)), SCENARIOS)
    (first_reused, first_new), *later = calls
    assert first_reused == [0, 0, 0] and min(first_new) > 20  # the opening prompts are read whole
    for reused, new in later:
        # the transcript so far comes from the cache; only "\n" + the next speaker's name (and any part of the
        # last answer that reads back as different tokens) is new
        assert min(reused) > 20 and max(new) <= 12, (reused, new)
    assert generation._STORE.get() is None, "a round's keys and values must not outlive it (the weights change)"


def test_without_a_round_nothing_is_reused(model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    spec = GenerationSpec(max_new_tokens=8)
    prompt = "テーマ「LBの順位」について、AとBが議論する。\nA："
    stops = [tokenizer.eos_token_id]
    first = generation.generate(model, tokenizer, [prompt], spec, stops)
    with generation.reuse_kv() as store:
        again = generation.generate(model, tokenizer, [prompt, prompt + first[0]], spec, stops)
        assert len(store.held) == 2
    assert again[0] == first[0] and not store.held


def test_a_turn_stops_at_max_new_tokens(model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    (text,) = generation.generate(model, tokenizer, ["テーマ「GPU」について"], GenerationSpec(max_new_tokens=5), [])
    assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) == 5


def test_sampling_is_seeded(model_and_tokenizer) -> None:
    import torch

    model, tokenizer = model_and_tokenizer
    chain = build_chain(model, tokenizer, GenerationSpec(max_new_tokens=16, do_sample=True))
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        runs.append(hold_debates(chain, SCENARIOS)[0])
    assert runs[0] == runs[1]


def test_a_small_model_generates_on_one_thread_and_the_setting_is_restored(model_and_tokenizer) -> None:
    import torch

    model, tokenizer = model_and_tokenizer
    before = torch.get_num_threads()
    chain = build_chain(model, tokenizer, GenerationSpec(max_new_tokens=24))
    with torch.no_grad(), generation_threads(model):
        assert torch.get_num_threads() == 1
        batched, _ = hold_debates(chain, SCENARIOS)
    assert torch.get_num_threads() == before
    with torch.no_grad(), generation_threads(model):
        assert batched == _reference(model, tokenizer, GenerationSpec(max_new_tokens=24))


@pytest.fixture(scope="module")
def adapted_model_and_tokenizer(model_and_tokenizer):
    """The embedded model with LoRA on all four linears, its B matrices made non-zero as after some training."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    model, tokenizer = model_and_tokenizer
    targets = ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"]
    adapted = get_peft_model(copy.deepcopy(model), LoraConfig(r=8, lora_alpha=16, target_modules=targets))
    torch.manual_seed(3)
    with torch.no_grad():
        for name, parameter in adapted.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.02)
    adapted.eval()
    return adapted, tokenizer


@pytest.mark.parametrize("fold", [True, False])
def test_a_trained_adapter_says_what_the_stock_pipeline_says(adapted_model_and_tokenizer, monkeypatch, fold) -> None:
    import torch

    model, tokenizer = adapted_model_and_tokenizer
    if not fold:  # as when the folded copies would not fit in free memory
        monkeypatch.setattr(generation, "_fits", lambda model, parameters: False)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    spec = GenerationSpec(max_new_tokens=24)
    with torch.no_grad():
        harness_says, _ = hold_debates(build_chain(model, tokenizer, spec), SCENARIOS)
        assert harness_says == _reference(model, tokenizer, spec)
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters()), "training weights untouched"
    assert not any("forward" in vars(m) for m in model.modules()), "every layer is back to its own forward"


def test_folding_covers_every_lora_linear(adapted_model_and_tokenizer) -> None:
    from peft.tuners.lora import Linear as LoraLinear

    model, _ = adapted_model_and_tokenizer
    layers = [m for m in model.modules() if isinstance(m, LoraLinear)]
    with generation._folded_lora(model.get_base_model()):
        assert len(layers) == 16 and all("forward" in vars(m) for m in layers)
    assert not any("forward" in vars(m) for m in layers)


def test_half_precision_adapters_are_not_folded(adapted_model_and_tokenizer) -> None:
    import copy

    import torch

    model, _ = adapted_model_and_tokenizer
    half = copy.deepcopy(model).to(torch.bfloat16)
    with generation._folded_lora(half.get_base_model()):
        assert not any("forward" in vars(m) for m in half.modules()), "bf16 would round BA away: keep peft's path"
