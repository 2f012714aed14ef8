"""Sharded models (FSDP2) under torchrun on CPU (gloo): generation on gathered parameters, one run, the refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from harness import distributed
from harness.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


@pytest.mark.parametrize(
    ("env", "cuda", "refused"),
    [
        ({}, False, None),
        ({"ACCELERATE_USE_DEEPSPEED": "true"}, True, "DeepSpeed is not supported"),
        ({"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2"}, False, "accelerate shards only on GPUs"),
        ({"ACCELERATE_USE_FSDP": "true"}, True, "only FSDP2 is supported"),  # accelerate's default is FSDP1
        ({"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2"}, True, None),
    ],
)
def test_launches_that_cannot_shard_are_refused_in_one_line(monkeypatch, env, cuda, refused):
    import torch

    for variable in ("ACCELERATE_USE_DEEPSPEED", "ACCELERATE_USE_FSDP", "FSDP_VERSION"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    answer = distributed.unsupported_launch()
    assert answer == refused if refused is None else (refused in answer and "\n" not in answer)


@pytest.mark.parametrize(
    ("variable", "refused"),
    [("ACCELERATE_USE_FSDP", "accelerate shards only on GPUs"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")],
)
def test_a_refused_launch_stops_before_any_run_directory(monkeypatch, write_experiment, tmp_path, variable, refused):
    import torch

    from harness.training.run import run

    monkeypatch.setenv(variable, "true")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match=refused):
        run(write_experiment(), runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_a_sharded_run_is_not_resumable_and_a_plain_one_is():
    assert "start a new run" in distributed.unresumable({"sharding": "fsdp2"})
    assert distributed.unresumable({"sharding": None}) is None
    assert distributed.unresumable({}) is None  # run logs written before sharding existed


def test_fsdp_with_quantized_weights_is_refused():
    from harness import DataSpec, Experiment, LoraSpec, ModelSpec, Scenario, TrainingSpec

    with pytest.raises(UserError, match=r"TrainingSpec\.fsdp: sharding quantized"):
        Experiment(model=ModelSpec("m", quantization="4bit"), lora=LoraSpec(), data=DataSpec("d.jsonl"),
                   scenarios=(Scenario("s", "月刊Kaggleは役に立たない", ("アンチ", "ファン")),), rubrics=("fluency",),
                   training=TrainingSpec(max_steps=2, fsdp=True), eval_every=1)  # fmt: skip


def test_an_unsharded_model_is_left_as_it_is():
    import torch

    model = torch.nn.Linear(4, 4)
    before = model.weight
    with distributed.full_parameters(model):
        assert model.weight is before


def _gathered_generation_on_two_ranks() -> None:
    """Run under torchrun: a sharded model decodes a different number of steps on each rank, as a debate does."""
    import torch
    import torch.distributed as dist
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor

    dist.init_process_group("gloo")

    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        block = [torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.GELU()) for _ in range(2)]
        return torch.nn.Sequential(torch.nn.Embedding(50, 16), *block, torch.nn.Linear(16, 50))

    reference, sharded = model(), model()
    fully_shard(sharded[1])
    fully_shard([sharded[2], sharded[3]], reshard_after_forward=False)  # a group, kept gathered, as a model's tail
    fully_shard(sharded)
    ids = torch.tensor([[1, 2, 3]])
    steps = 5 if dist.get_rank() == 0 else 2  # without the gather, rank 0's third forward waits for rank 1 forever
    with torch.no_grad():
        for _ in range(2):  # twice: the settings restored after the first round hold for the second
            with distributed.full_parameters(sharded):
                for _ in range(steps):
                    out = sharded(ids)
                assert torch.allclose(out, reference(ids), atol=1e-6)
    assert all(isinstance(p, DTensor) for p in sharded.parameters())  # resharded afterwards
    sharded(ids).sum().backward()  # and training goes on: one forward and backward with the usual all-gathers
    assert all(p.grad is not None for p in sharded.parameters())
    sys.stdout.write(f"rank {dist.get_rank()}: ok\n")  # one write: print's two would interleave across ranks
    sys.stdout.flush()
    dist.barrier()
    dist.destroy_process_group()
    # After this work is done, torch 2.13's own teardown at interpreter exit aborts a rank in 2 of 6 runs of this
    # script ('terminate called without an active exception', exit -6, no Python frame left; only after a
    # full_parameters block followed by a backward). Not seen in `harness run` under torchrun; skip that teardown.
    os._exit(0)


@pytest.mark.slow
def test_ranks_decode_different_numbers_of_steps_on_gathered_parameters():
    done = subprocess.run([*TORCHRUN, __file__], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert sorted(line for line in done.stdout.splitlines() if line.endswith(": ok")) == ["rank 0: ok", "rank 1: ok"]


@pytest.mark.slow
def test_a_sharded_run_trains_evaluates_and_saves_once(write_experiment, tmp_path):
    experiment, runs = write_experiment(max_steps=2, eval_every=2), tmp_path / "runs"
    command = [*TORCHRUN, "-m", "harness", "run", str(experiment), "training.fsdp=True", "--runs-dir", str(runs)]
    done = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    (run_dir,) = runs.iterdir()
    log = [json.loads(line) for line in (run_dir / "runlog.jsonl").read_text(encoding="utf-8").splitlines()]
    assert (log[0]["world_size"], log[0]["backend"], log[0]["sharding"]) == (2, "gloo", "fsdp2")
    (model,) = [r for r in log if r["type"] == "model"]
    assert model["sharded_parameters"] > 0  # the base weights really were split across the two ranks
    assert [r["step"] for r in log if r["type"] == "eval"] == [0, 2]
    seen = Counter((r["step"], r["scenario"]) for r in log if r["type"] == "conversation")
    assert seen == {(step, s): 1 for step in (0, 2) for s in ("monthly-kaggle", "shake-up")}
    assert all(r["turns"] and not r["error"] for r in log if r["type"] == "conversation")
    assert (log[-1]["type"], log[-1]["status"]) == ("end", "completed")
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()
    assert (run_dir / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors").exists()

    # Sharding changes nothing the training computes: the same losses and gradient norms as plain DDP (the LoRA
    # weights, whole on each rank, have their gradients averaged like DDP's).
    plain = subprocess.run([*TORCHRUN, "-m", "harness", "run", str(experiment), "--runs-dir", str(tmp_path / "ddp")],
                           cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert plain.returncode == 0, (plain.stdout + plain.stderr)[-3000:]
    (ddp_dir,) = (tmp_path / "ddp").iterdir()
    ddp = [json.loads(line) for line in (ddp_dir / "runlog.jsonl").read_text(encoding="utf-8").splitlines()]
    assert ddp[0]["sharding"] is None
    curves = [[(r["step"], r["loss"], r["grad_norm"]) for r in records if "loss" in r] for records in (log, ddp)]
    assert len(curves[0]) == 2
    assert curves[0] == pytest.approx(curves[1], rel=1e-4)

    # As if it had crashed (the end record of a failed run): --resume refuses it before anything starts.
    lines = (run_dir / "runlog.jsonl").read_text(encoding="utf-8").splitlines()
    crashed = [*lines[:-1], json.dumps({**log[-1], "status": "failed"})]
    (run_dir / "runlog.jsonl").write_text("\n".join(crashed) + "\n", encoding="utf-8")
    resumed = subprocess.run([sys.executable, "-m", "harness", "run", "--resume", str(run_dir)], cwd=ROOT, env=ENV,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert resumed.returncode == 2
    assert resumed.stderr.strip().splitlines()[-1].startswith(f"harness: error: --resume {run_dir}: the run sharded")


if __name__ == "__main__":
    _gathered_generation_on_two_ranks()
