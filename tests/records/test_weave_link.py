"""Weave online, against a local HTTP endpoint standing in for W&B: what the real Weave client sends."""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import wandb_file

os.environ["WANDB_ERROR_REPORTING"] = "false"  # read when weave is imported: no error reports sent from tests
pytest.importorskip("weave")

from harness import EMBEDDED, GenerationSpec, ModelSpec, Scenario
from harness.records.weave_link import start_weave


class _Recorder(BaseHTTPRequestHandler):
    """Answers the few W&B (GraphQL) and Weave trace-server requests `weave.init` and an evaluation make, and keeps
    every JSON body it was sent."""

    received: list[tuple[str, dict]]

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.received.append((self.path, {}))
        if self.path.endswith("/server_info"):
            return self._reply({"min_required_weave_python_version": "0.0.1", "trace_server_version": "999.0.0"})
        self._reply({})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}  # file uploads are multipart
        self.received.append((self.path, body))
        if self.path.endswith("/graphql"):
            viewer = {"username": "tester", "defaultEntity": {"name": "tester"}}
            return self._reply({"data": {"viewer": viewer, "project": {"name": "proj"}}})
        rows = body.get("table", {}).get("rows", [])
        self._reply({"digest": "d1gest", "row_digests": [f"r{i}" for i in range(len(rows))]})


@pytest.fixture
def wandb_server(monkeypatch):
    received: list[tuple[str, dict]] = []
    handler = type("Handler", (_Recorder,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("WANDB_BASE_URL", url)
    monkeypatch.setenv("WF_TRACE_SERVER_URL", f"{url}/traces")
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef0123456789abcdef01234567")
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")
    yield received
    server.shutdown()


RUN_ID = "kaggle_debate-20261201-101010-beef"


def _history(run_dir) -> list[dict]:
    """The offline run's history rows, once W&B's writer has put them on disk (it can lag `finish` a little)."""
    deadline = time.monotonic() + 30
    while not (rows := wandb_file.history(next(run_dir.glob("wandb/offline-run-*/*.wandb")))):
        assert time.monotonic() < deadline, "no history written"
        time.sleep(0.2)
    return rows


def _calls(received: list[tuple[str, dict]]) -> list[dict]:
    """Every call the client started or completed, by op name (without its digest)."""
    calls = []
    for path, body in received:
        if path.endswith("/calls/complete"):
            calls += body["batch"]
        elif path.endswith("/call/start"):
            calls.append(body["start"])
    for call in calls:
        call["op"] = call["op_name"].split("/op/")[-1].split(":")[0]
    return calls


def test_weave_traces_the_debate_chain_and_holds_each_conversation_with_its_scores(wandb_server, tmp_path) -> None:
    from harness.evaluation.debate import build_chain, hold_debates
    from harness.records.tracking import Tracker
    from harness.training.model import load

    # The W&B side is a real run, offline here (an online one needs the whole W&B backend); Weave is started the way
    # the tracker starts it online, on the run's project, and links its calls to the active W&B run.
    tracker = Tracker(tmp_path, RUN_ID, "kaggle_debate", {})
    assert tracker.weave is None, "offline: no Weave"
    tracker.weave = link = start_weave("online", "tester/proj", RUN_ID, "kaggle_debate")
    assert link is not None
    model, tokenizer = load(ModelSpec(EMBEDDED), "cpu")
    scenarios = (Scenario("shake-up", "Private LBのshake upはただの運ゲーだ", turns=2),)
    (conversation,), _ = hold_debates(build_chain(model, tokenizer, GenerationSpec(max_new_tokens=4)), scenarios)
    row = {"scenario": "shake-up", "topic": scenarios[0].topic, "speakers": ["Kaggleアンチ", "Kaggleファン"],
           "transcript": conversation.transcript(), "scores": {"relevance": 0.25, "fluency": None},
           "evidence": {}, "error": "fluency: ValueError: 辞書が壊れています"}  # fmt: skip
    tracker.log_round(4, [row], ["relevance", "fluency"], {"relevance": 0.25})
    tracker.finish()
    (history,) = _history(tmp_path)
    assert history["train/global_step"] == 4 and history["rubric/relevance"] == 0.25
    assert tracker.weave is not None and not link.on, "finished"

    calls = _calls(wandb_server)
    chain = [c for c in calls if c["op"].startswith("langchain.")]
    assert sorted(c["op"] for c in chain if c["parent_id"] is None) == ["langchain.Chain.debate_turn"] * 2
    prompts = [c["inputs"]["prompts"][0] for c in chain if c["op"] == "langchain.Llm.LiveModelLLM"]
    assert [p.rsplit("\n", 1)[-1] for p in prompts] == ["Kaggleアンチ：", "Kaggleファン："], "each turn's model call"
    assert {c["wb_run_id"] for c in calls} == {f"tester/proj/{RUN_ID}"}, "every call is linked to the training run"
    assert {c["wb_run_step"] for c in calls} == {history["_step"]}, "at the W&B step of the round's row"

    (evaluation,) = [c for c in calls if c["op"] == "Evaluation.evaluate"]
    assert evaluation["display_name"] == f"{RUN_ID} step 4" and evaluation["wb_run_step"] == history["_step"]
    (prediction,) = [c for c in calls if c["op"] == "Model.predict"]
    assert prediction["inputs"]["inputs"] == {"scenario": "shake-up", "topic": scenarios[0].topic}
    assert prediction["output"] == conversation.transcript()
    scores = [c for c in calls if c["op"] in ("relevance", "fluency")]
    assert [(c["op"], c["output"]) for c in scores] == [("relevance", 0.25)], "a failed rubric sends no score"
    feedback = [f for path, body in wandb_server if path.endswith("/feedback/batch/create") for f in body["batch"]]
    assert [(f["feedback_type"], f["payload"]) for f in feedback] == [("wandb.runnable.relevance", {"output": 0.25})]
    (summary,) = [c for c in calls if c["op"] == "Evaluation.summarize"]
    assert summary["output"]["relevance"] == {"mean": 0.25}


def test_credentials_are_redacted_from_what_weave_sends(wandb_server, monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefghijklmnopqrstuvwxyz")
    link = start_weave("online", "tester/proj", RUN_ID, "kaggle_debate")
    assert link is not None
    row = {"scenario": "shake-up", "topic": "t", "transcript": "Kaggleアンチ：hf_abcdefghijklmnopqrstuvwxyz を貼るな",
           "scores": {"relevance": 0.5}}  # fmt: skip
    link.log_round(0, [row], ["relevance"], {"relevance": 0.5})
    link.finish()
    sent = json.dumps(wandb_server, ensure_ascii=False)
    assert "hf_abcdefghijklmnopqrstuvwxyz" not in sent and "Kaggleアンチ：*** を貼るな" in sent


def test_weave_is_skipped_silently_offline_and_disabled(monkeypatch, capsys) -> None:
    assert start_weave("offline", "tester/proj", RUN_ID, "kaggle_debate") is None
    monkeypatch.setenv("WANDB_DISABLE_WEAVE", "true")
    assert start_weave("online", "tester/proj", RUN_ID, "kaggle_debate") is None
    assert capsys.readouterr().err == ""


def test_a_weave_failure_is_one_warning_and_the_round_goes_on(wandb_server, capsys) -> None:
    link = start_weave("online", "tester/proj", RUN_ID, "kaggle_debate")
    assert link is not None

    def unreachable(*args, **kwargs):
        raise ConnectionError("trace.wandb.ai unreachable")

    link._weave = type("Broken", (), {"EvaluationLogger": unreachable, "finish": unreachable})
    row = {"scenario": "shake-up", "topic": "t", "transcript": "Kaggleアンチ：運です", "scores": {"relevance": 0.5}}
    for step in (0, 2):
        link.log_round(step, [row], ["relevance"], {"relevance": 0.5})
    link.finish()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("harness:")]
    assert lines == [
        "harness: Weave failed (ConnectionError: trace.wandb.ai unreachable); Weave is off for this run, training "
        "continues and the W&B run and the run log have everything"
    ]
    assert not link.on


def test_a_weave_server_that_fails_at_init_is_one_warning(monkeypatch, capsys) -> None:
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # the discard port: nothing answers
    monkeypatch.setenv("WF_TRACE_SERVER_URL", "http://127.0.0.1:9/traces")
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef0123456789abcdef01234567")
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")
    assert start_weave("online", "tester/proj", RUN_ID, "kaggle_debate") is None
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("harness:")]
    assert line.startswith("harness: Weave failed (") and "training continues" in line
