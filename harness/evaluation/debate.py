"""Debates over the live model through a LangChain (LCEL) chain, batched across scenarios turn by turn."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForLLMRun
from langchain_core.language_models.llms import BaseLLM
from langchain_core.outputs import Generation, LLMResult
from langchain_core.prompts import PromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda

from harness.evaluation.generation import generate_counted, reuse_kv
from harness.spec.experiment import GenerationSpec, Scenario
from rubrics.records import Conversation, Turn

PROMPT = PromptTemplate.from_template("テーマ「{topic}」について、{cast}が議論する。\n{history}{speaker}：")


def chat_prompt(tokenizer: Any) -> Any:
    """A turn's prompt through the tokenizer's chat template, for chat models.

    Roles are seen from the speaker about to talk: the topic and cast open as a user message, the speaker's own
    earlier turns are `assistant`, everyone else's `user` (consecutive ones merged, so templates that insist on
    alternation accept it), each turn keeps its `speaker：` prefix, and the prompt ends inside an open assistant
    message that starts `speaker：`, exactly where the plain prompt ends.
    """

    def build(inputs: dict[str, Any]) -> str:
        speaker = inputs["speaker"]
        messages = [{"role": "user", "content": f"テーマ「{inputs['topic']}」について、{inputs['cast']}が議論する。"}]
        for line in inputs["history"].splitlines():
            role = "assistant" if line.partition("：")[0] == speaker else "user"
            if messages[-1]["role"] == role:
                messages[-1]["content"] += "\n" + line
            else:
                messages.append({"role": role, "content": line})
        if messages[-1]["role"] == "assistant":  # the speaker talks twice in a row: keep the roles alternating
            messages.append({"role": "user", "content": "（続けてください）"})
        messages.append({"role": "assistant", "content": f"{speaker}："})
        return tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)

    return build


def first_line(text: str) -> str:
    """A turn ends at the first line break: what follows belongs to the next speaker."""
    return text.split("\n", 1)[0].strip()


class TraceRecorder(BaseCallbackHandler):
    """Records each chain step's input, output, start, latency, tokens and error, tagged with the scenario and turn
    it served. `start_s` counts from the recorder's creation (the round's start), so a round's turns line up on one
    time axis; a turn carries the token counts of the model call inside it."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._origin = time.perf_counter()
        self._open: dict[UUID, tuple[float, str, Any, dict[str, Any]]] = {}
        self._parents: dict[UUID, UUID] = {}
        self._tokens: dict[UUID, tuple[int | None, int | None]] = {}

    def _start(self, run_id: UUID, component: str, payload: Any, metadata: dict[str, Any] | None) -> None:
        self._open[run_id] = (time.perf_counter(), component, payload, dict(metadata or {}))

    def _end(self, run_id: UUID, output: Any, error: BaseException | None = None) -> None:
        ended = time.perf_counter()
        started, component, payload, metadata = self._open.pop(run_id)
        tokens_in, tokens_out = self._tokens.pop(run_id, (None, None))
        self.events.append(
            {
                "scenario": metadata.get("scenario"),
                "turn": metadata.get("turn"),
                "component": component,
                "input": payload,
                "output": output if error is None else None,
                "start_s": round(started - self._origin, 6),
                "latency_s": round(ended - started, 6),
                "tokens_in": tokens_in,
                "tokens_out": tokens_out,
                "error": None if error is None else f"{type(error).__name__}: {error}",
            }
        )

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                       metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:  # fmt: skip
        if parent_run_id is None:
            self._start(run_id, "turn", inputs, metadata)
        else:
            self._parents[run_id] = parent_run_id

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if run_id in self._open:
            self._end(run_id, outputs)

    def on_llm_start(self, serialized: Any, prompts: list[str], *, run_id: UUID, parent_run_id: UUID | None = None,
                     metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:  # fmt: skip
        self._start(run_id, "llm", prompts[0], metadata)
        if parent_run_id is not None:
            self._parents[run_id] = parent_run_id

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        generation = response.generations[0][0]
        info = generation.generation_info or {}
        tokens = (info.get("prompt_tokens"), info.get("new_tokens"))
        self._tokens[run_id] = tokens
        root = self._root(run_id)
        if root != run_id:
            self._tokens[root] = tokens
        self._end(run_id, generation.text)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if run_id in self._open:
            self._end(run_id, None, error)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, None, error)

    def _root(self, run_id: UUID) -> UUID:
        while run_id in self._parents:
            run_id = self._parents[run_id]
        return run_id


# Below this size a decode step's matmuls take microseconds: splitting them across threads gains nothing, and when
# another process shares the cores OpenMP's barriers made the embedded model's rounds 10-20x slower (README).
SINGLE_THREAD_BELOW_PARAMETERS = 50_000_000


@contextmanager
def generation_threads(model: Any) -> Iterator[None]:
    """Generate a small model on CPU with one intra-op thread; the thread count is restored afterwards."""
    import torch

    small = sum(p.numel() for p in model.parameters()) < SINGLE_THREAD_BELOW_PARAMETERS
    if model.device.type != "cpu" or not small:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# End-of-message tokens of common chat templates (ChatML, Llama 3, Gemma): a chat model's turn ends there.
_END_OF_MESSAGE = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>")


def _end_of_turn_ids(tokenizer: Any) -> list[int]:
    """Token ids that end a turn: end-of-text, the line break and a chat template's end of message."""
    ids = [tokenizer.eos_token_id]
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
    if len(newline) == 1:
        ids.append(newline[0])
    vocab = tokenizer.get_vocab()
    return ids + [vocab[t] for t in _END_OF_MESSAGE if t in vocab and vocab[t] not in ids]


class LiveModelLLM(BaseLLM):
    """The live (training) model as a LangChain LLM: one batched `generate_counted` call per batch, each generation
    carrying its token counts (`prompt_tokens`, `new_tokens`) for the traces."""

    model: Any
    tokenizer: Any
    generation: GenerationSpec
    stop_ids: list[int]

    @property
    def _llm_type(self) -> str:
        return "harness-live-model"

    def _generate(self, prompts: list[str], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> LLMResult:  # fmt: skip
        generated = generate_counted(self.model, self.tokenizer, prompts, self.generation, self.stop_ids)
        return LLMResult(generations=[[Generation(text=g.text, generation_info={"prompt_tokens": g.prompt_tokens,
                                                                             "new_tokens": g.new_tokens})]
                                      for g in generated])  # fmt: skip


def _base(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model  # LoRA layers are injected in place


def build_chain(model: Any, tokenizer: Any, generation: GenerationSpec) -> Runnable:
    """prompt | live model | first line: a batch of turns is one batched generation with per-debate KV reuse."""
    llm = LiveModelLLM(model=_base(model), tokenizer=tokenizer, generation=generation,
                       stop_ids=_end_of_turn_ids(tokenizer))  # fmt: skip
    prompt = RunnableLambda(chat_prompt(tokenizer)) if generation.chat_template else PROMPT
    return (prompt | llm | RunnableLambda(first_line)).with_config(run_name="debate_turn")


def build_reference_chain(model: Any, tokenizer: Any, generation: GenerationSpec, batch_size: int = 1) -> Runnable:
    """The stock LangChain route, kept as the reference the harness is measured against: the same prompt and
    settings through HuggingFacePipeline (`model.generate`), which re-reads the transcript on every turn."""
    from langchain_huggingface import HuggingFacePipeline
    from transformers import pipeline

    base = _base(model)
    pipe = pipeline("text-generation", model=base, tokenizer=tokenizer, device=base.device)
    kwargs: dict[str, Any] = {
        "max_new_tokens": generation.max_new_tokens,
        "do_sample": generation.do_sample,
        "repetition_penalty": generation.repetition_penalty,
        "eos_token_id": _end_of_turn_ids(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "return_full_text": False,
        "batch_size": batch_size,
    }
    if generation.do_sample:
        kwargs |= {"temperature": generation.temperature, "top_p": generation.top_p}
    llm = HuggingFacePipeline(pipeline=pipe, batch_size=batch_size)
    return (PROMPT | llm.bind(pipeline_kwargs=kwargs) | RunnableLambda(first_line)).with_config(run_name="debate_turn")


def most_tokens(scenario: Scenario, generation: GenerationSpec, tokenizer: Any) -> int:
    """The most tokens a scenario's last turn can hold: its prompt (plain or through the chat template) with every
    earlier turn at full length, plus the answer. Past the model's context window a turn errors or turns to noise,
    so this is checked before a run."""
    speakers = [scenario.speakers[i % len(scenario.speakers)] for i in range(scenario.turns)]
    inputs = {"topic": scenario.topic, "cast": "と".join(scenario.speakers),
              "history": "".join(f"{s}：\n" for s in speakers[:-1]), "speaker": speakers[-1]}  # fmt: skip
    skeleton = chat_prompt(tokenizer)(inputs) if generation.chat_template else PROMPT.format(**inputs)
    return len(tokenizer(skeleton)["input_ids"]) + scenario.turns * generation.max_new_tokens


class RoundStopped(Exception):
    """A stop was requested (SIGINT/SIGTERM) while a round was under way: the round is abandoned between turns."""


def hold_debates(
    chain: Runnable, scenarios: Sequence[Scenario], should_stop: Callable[[], bool] | None = None
) -> tuple[list[Conversation], list[dict[str, Any]]]:
    """Every scenario's debate, turn by turn: each turn is one batched chain call over all scenarios still talking.

    `should_stop` is asked before every turn, so a stop request ends even a long round within one turn.
    """
    recorder = TraceRecorder()
    turns: dict[str, list[Turn]] = {s.name: [] for s in scenarios}
    with reuse_kv():
        for index in range(max(s.turns for s in scenarios)):
            if should_stop is not None and should_stop():
                raise RoundStopped(f"stopped before turn {index + 1}")
            _turn(chain, scenarios, index, turns, recorder)
    conversations = [Conversation(tuple(turns[s.name]), scenario=s.name, topic=s.topic) for s in scenarios]
    return conversations, recorder.events


def _turn(chain: Runnable, scenarios: Sequence[Scenario], index: int, turns: dict[str, list[Turn]],
          recorder: TraceRecorder) -> None:  # fmt: skip
    """Turn `index` of every scenario still talking, as one batched chain call."""
    active = [s for s in scenarios if index < s.turns]
    inputs = [
        {
            "topic": s.topic,
            "cast": "と".join(s.speakers),
            "history": "".join(f"{t.speaker}：{t.text}\n" for t in turns[s.name]),
            "speaker": s.speakers[index % len(s.speakers)],
        }
        for s in active
    ]
    configs = [{"callbacks": [recorder], "metadata": {"scenario": s.name, "turn": index}} for s in active]
    for scenario, given, text in zip(active, inputs, chain.batch(inputs, config=configs), strict=True):
        turns[scenario.name].append(Turn(given["speaker"], text))
