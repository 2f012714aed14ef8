"""Any causal LM: a Llama-architecture chat model (built here, offline) runs the debate experiment end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.spec.experiment import EMBEDDED_DIR

ROOT = Path(__file__).resolve().parent.parent
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
EXPERIMENT = """
from harness import DataSpec, Experiment, GenerationSpec, LoraSpec, ModelSpec, Scenario, TrainingSpec
from harness.cleaning import default_tweet_rules

experiment = Experiment(
    model=ModelSpec({model!r}, dtype="float32"),
    lora=LoraSpec(r=4, alpha=8, dropout=0.0),  # no target_modules: peft's default for Llama (q_proj, v_proj)
    data=DataSpec({data!r}, block_size=64),
    cleaning=default_tweet_rules(),
    scenarios=(
        Scenario("monthly-kaggle", "月刊Kaggleは役に立たない", ("Kaggleアンチ", "Kaggleファン"), turns=3),
        Scenario("shake-up", "Private LBのshake upはただの運ゲーだ", ("Kaggleアンチ", "Kaggleファン"), turns=3),
    ),
    rubrics=("relevance", "contamination", "fluency"),
    training=TrainingSpec(max_steps=2, learning_rate=1e-3, batch_size=4, logging_steps=1),
    generation=GenerationSpec(max_new_tokens=12, chat_template=True),
    eval_every=2,
)
"""


def tiny_llama_chat(path: Path) -> None:
    """A 2-layer LlamaForCausalLM with random weights over the embedded tokenizer plus a ChatML template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(EMBEDDED_DIR)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = CHATML
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)


@pytest.mark.slow
def test_a_llama_chat_model_holds_the_debates_through_its_chat_template(tmp_path):
    tiny_llama_chat(tmp_path / "llama")
    experiment = tmp_path / "experiments" / "chat.py"
    experiment.parent.mkdir()
    experiment.write_text(
        EXPERIMENT.format(model=str(tmp_path / "llama"), data=str(ROOT / "data" / "kaggle_tweets.jsonl")), "utf-8"
    )
    command = [sys.executable, "-m", "harness", "run", str(experiment), "--runs-dir", str(tmp_path / "r")]
    done = subprocess.run(
        command, cwd=ROOT, env={**os.environ, "WANDB_MODE": "offline"}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (tmp_path / "r").iterdir()
    log = [json.loads(line) for line in (run_dir / "runlog.jsonl").read_text(encoding="utf-8").splitlines()]
    (model,) = [r for r in log if r["type"] == "model"]
    assert model["lora_targets"] == ["q_proj", "v_proj"]
    conversations = [r for r in log if r["type"] == "conversation"]
    assert len(conversations) == 4 and all(len(c["turns"]) == 3 and not c["error"] for c in conversations)
    assert all(set(c["scores"]) == {"relevance", "contamination", "fluency"} for c in conversations)
    # The third turn's prompt, seen from Kaggleアンチ: its own first turn is the assistant's, the fan's the user's.
    prompt = next(t["input"] for t in log if t["type"] == "trace" and t["component"] == "llm" and t["turn"] == 2)
    assert prompt.startswith("<|im_start|>user\nテーマ「")
    assert "<|im_start|>assistant\nKaggleアンチ：" in prompt and "<|im_start|>user\nKaggleファン：" in prompt
    assert prompt.endswith("<|im_start|>assistant\nKaggleアンチ：")


def test_qlora_without_cuda_is_one_line_and_exit_2_before_a_run_directory_exists(write_experiment, tmp_path, capsys):
    from harness.cli import main

    source = Path(write_experiment()).read_text(encoding="utf-8")
    quantized = write_experiment(source.replace('dtype="float32")', 'dtype="float32", quantization="4bit")'), "q")
    assert main(["run", str(quantized), "--profile", "full", "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert "ModelSpec.quantization='4bit' loads through bitsandbytes, which needs CUDA" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "runs").exists()
