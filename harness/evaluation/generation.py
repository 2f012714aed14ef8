"""Batched turn generation over the live model, reusing each conversation's keys and values across its turns.

The stock route (HuggingFacePipeline over `model.generate`) re-reads the whole transcript on every turn and keeps a
finished row in the batch until the longest row ends. Here a call prefills only the tokens that no earlier turn of
the same debate round has computed, and a row leaves the batch as soon as its turn ends. The words are the same as
the stock route's under greedy decoding (tests/evaluation/test_debate.py, benchmarks/bench_eval.py).

Reused keys and values are exact: a causal model's states for a token prefix depend on that prefix only. They are
held only inside `reuse_kv()` (one debate round, one set of weights) and dropped when it ends, so states computed
before a training step are never read after it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, NamedTuple

from harness.spec.experiment import GenerationSpec


@dataclass
class _Held:
    """One conversation's computed prefix: its token ids and, per layer, keys and values [1, heads, tokens, dim]."""

    ids: list[int]
    layers: list[tuple[Any, Any]]


class KVStore:
    """The prefixes finished turns left behind in one debate round; a later prompt takes the longest match."""

    def __init__(self) -> None:
        self.held: list[_Held] = []

    def take(self, ids: Sequence[int]) -> tuple[_Held | None, int]:
        """The held prefix sharing the most leading tokens with `ids`, and that count; the prefix leaves the store."""
        best, best_length = None, 0
        for held in self.held:
            length = _common_prefix(held.ids, ids)
            if length > best_length:
                best, best_length = held, length
        if best is not None:
            self.held.remove(best)
        return best, best_length


_STORE: ContextVar[KVStore | None] = ContextVar("harness_kv_store", default=None)


@contextmanager
def reuse_kv() -> Iterator[KVStore]:
    """Within this block, generation calls reuse the keys and values of earlier calls' prompts and answers."""
    store = KVStore()
    token = _STORE.set(store)
    try:
        yield store
    finally:
        _STORE.reset(token)
        store.held.clear()


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _logits_processors(model: Any, generation: GenerationSpec) -> Any:
    """transformers' own processors in `generate`'s order: a turn samples from the distribution the pipeline would."""
    from transformers.generation.logits_process import (
        LogitsProcessorList,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    processors = LogitsProcessorList()
    if generation.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(generation.repetition_penalty))
    if generation.do_sample:
        processors.append(TemperatureLogitsWarper(generation.temperature))
        top_k = getattr(model.generation_config, "top_k", None) or 0  # `generate` applies the model's default top-k
        if top_k > 0:
            processors.append(TopKLogitsWarper(top_k))
        if generation.top_p < 1.0:
            processors.append(TopPLogitsWarper(generation.top_p))
    return processors


@contextmanager
def _folded_lora(model: Any) -> Iterator[None]:
    """Within this block each LoRA linear runs as one matrix product with W + BA·scale, a new tensor.

    peft computes a LoRA linear as three products plus a scale and a sum; on a small model those extra calls are a
    sixth of a decode step. The training weights are not touched (the folded copies are dropped afterwards). The
    folding is skipped where the copies would not fit comfortably in free memory, for half-precision weights (bf16
    would round much of a small update BA away when added to W), and for layer kinds other than plain LoRA (DoRA,
    merged or disabled adapters).
    """
    import torch.nn.functional as F
    from peft.tuners.lora import Linear as LoraLinear

    layers = [m for m in model.modules() if isinstance(m, LoraLinear) and _foldable(m)]
    if not layers or not _fits(model, sum(m.base_layer.weight.numel() for m in layers)):
        yield
        return
    for layer in layers:
        weight = layer.base_layer.weight + sum(layer.get_delta_weight(a) for a in _adapters(layer))
        layer.forward = _linear(F.linear, weight, layer.base_layer.bias)
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward  # back to the class's forward


def _linear(linear: Any, weight: Any, bias: Any) -> Any:
    return lambda x, *args, **kwargs: linear(x, weight, bias)


def _adapters(layer: Any) -> list[str]:
    """The active adapters this layer carries (peft's forward skips the others too)."""
    return [a for a in layer.active_adapters if a in layer.lora_A]


def _foldable(layer: Any) -> bool:
    import torch

    active = _adapters(layer)
    return (
        bool(active)
        and layer.base_layer.weight.dtype == torch.float32
        and not layer.merged
        and not layer.disable_adapters
        and not any(layer.use_dora.get(a) for a in active)
        and not getattr(layer, "fan_in_fan_out", False)
    )


def _fits(model: Any, parameters: int) -> bool:
    """Whether a copy of this many of the model's parameters takes under a quarter of the free memory."""
    import psutil
    import torch

    size = parameters * next(model.parameters()).element_size()
    if model.device.type == "cuda":
        free = torch.cuda.mem_get_info(model.device)[0]
    else:
        free = psutil.virtual_memory().available
    return size < free / 4


def _assemble(reused: list[tuple[_Held | None, int]], chunks: list[list[int]], pad_id: int) -> tuple[Any, ...]:
    """The batch's cache, attention mask, new input ids and their positions.

    Each row is [padding][its reused prefix][padding][its new tokens]: prefixes right-aligned in the cache part,
    new tokens right-aligned in the input; the mask hides the padding and positions count unmasked tokens only.
    """
    import torch
    from transformers import DynamicCache

    rows, cached = len(chunks), max(length for _, length in reused)
    width = max(map(len, chunks))
    cache = DynamicCache()
    if cached:
        sample = next(held for held, length in reused if length)
        for index, (keys, _) in enumerate(sample.layers):
            shape = (rows, keys.shape[1], cached, keys.shape[3])
            layer_keys = keys.new_zeros(shape)
            layer_values = keys.new_zeros(shape)
            for row, (held, length) in enumerate(reused):
                if length:
                    layer_keys[row, :, cached - length :] = held.layers[index][0][0, :, :length]
                    layer_values[row, :, cached - length :] = held.layers[index][1][0, :, :length]
            cache.update(layer_keys, layer_values, index)
    mask = torch.zeros(rows, cached + width, dtype=torch.long)
    input_ids = torch.full((rows, width), pad_id, dtype=torch.long)
    for row, ((_, length), chunk) in enumerate(zip(reused, chunks, strict=True)):
        mask[row, cached - length : cached] = 1
        mask[row, cached + width - len(chunk) :] = 1
        input_ids[row, width - len(chunk) :] = torch.tensor(chunk)
    positions = (mask.cumsum(1) - 1).clamp(min=0)[:, cached:]
    return cache, mask, input_ids, positions


class _Batch:
    """The rows still speaking: their cache, mask and held token ids; finished rows are handed to the store."""

    def __init__(self, model: Any, cache: Any, mask: Any, ids: list[list[int]]) -> None:
        self.model, self.cache, self.mask, self.ids = model, cache, mask, ids
        self.rows = list(range(len(ids)))  # index into the call's prompts for each live row
        self.cache_arg = "cache" if "cache" in _forward_parameters(model) else "past_key_values"
        self.dtype = next(model.parameters()).dtype

    def forward(self, input_ids: Any, positions: Any, mask: Any = None) -> Any:
        mask = self.mask.to(self.model.device) if mask is None else mask
        out = self.model(input_ids=input_ids.to(self.model.device), attention_mask=mask,
                         position_ids=positions.to(self.model.device), use_cache=True, logits_to_keep=1,
                         **{self.cache_arg: self.cache})  # fmt: skip
        return out.logits[:, -1, :].float().cpu()

    def _decode_mask(self) -> Any:
        """A one-token step's additive attention mask [rows, 1, 1, columns], as the model's eager path builds it
        (0 where a row may look, the dtype's minimum where not); passed ready-made, it skips the mask builder."""
        import torch

        visible = self.mask.to(self.model.device, torch.bool)[:, None, None, :]
        zero = torch.zeros((), dtype=self.dtype, device=visible.device)
        return zero.masked_fill(~visible, torch.finfo(self.dtype).min)

    def step(self, tokens: Any) -> Any:
        """Feed each live row's new token and return the next logits."""
        import torch

        for live, token in zip(self.ids, tokens.tolist(), strict=True):
            live.append(token)
        self.mask = torch.cat([self.mask, self.mask.new_ones(len(self.rows), 1)], dim=1)
        return self.forward(tokens[:, None], self.mask.sum(1, keepdim=True) - 1, self._decode_mask())

    def retire(self, finished: list[int], store: KVStore | None) -> list[int]:
        """Drop finished rows (positions in the live batch), keeping their states in `store` for the next turn;
        returns the positions of the rows kept."""
        import torch

        if store is not None:
            for row in finished:
                columns = self.mask[row].nonzero().squeeze(1).to(self.model.device)
                layers = [(layer.keys[row : row + 1, :, columns], layer.values[row : row + 1, :, columns])
                          for layer in self.cache.layers]  # fmt: skip
                store.held.append(_Held(self.ids[row], layers))
        keep = [row for row in range(len(self.rows)) if row not in finished]
        self.rows = [self.rows[row] for row in keep]
        self.ids = [self.ids[row] for row in keep]
        if not keep:
            return keep
        index = torch.tensor(keep)
        start = int(self.mask[index].any(0).nonzero()[0])  # leading columns no remaining row reads: cut them
        self.mask = self.mask[index, start:]
        device_index = index.to(self.model.device)
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(0, device_index)[:, :, start:]
            layer.values = layer.values.index_select(0, device_index)[:, :, start:]
        return keep


_PARAMETERS: dict[type, frozenset[str]] = {}


def _forward_parameters(model: Any) -> frozenset[str]:
    import inspect

    kind = type(model)
    if kind not in _PARAMETERS:
        _PARAMETERS[kind] = frozenset(inspect.signature(model.forward).parameters)
    return _PARAMETERS[kind]


class Generated(NamedTuple):
    """One prompt's continuation and its token counts (the prompt's, and those generated), for the traces."""

    text: str
    prompt_tokens: int
    new_tokens: int


def generate(model: Any, tokenizer: Any, prompts: Sequence[str], generation: GenerationSpec,
             stop_ids: Sequence[int]) -> list[str]:  # fmt: skip
    """Each prompt's continuation, up to a stop token (included) or `max_new_tokens`, generated as one batch."""
    return [g.text for g in generate_counted(model, tokenizer, prompts, generation, stop_ids)]


def generate_counted(model: Any, tokenizer: Any, prompts: Sequence[str], generation: GenerationSpec,
                     stop_ids: Sequence[int]) -> list[Generated]:  # fmt: skip
    """`generate`, with each prompt's token counts."""
    import torch

    with torch.inference_mode(), _folded_lora(model):
        return _generate(model, tokenizer, prompts, generation, stop_ids)


def _generate(model: Any, tokenizer: Any, prompts: Sequence[str], generation: GenerationSpec,
              stop_ids: Sequence[int]) -> list[Generated]:  # fmt: skip
    import torch

    store = _STORE.get()
    encoded = [tokenizer(prompt, add_special_tokens=False)["input_ids"] for prompt in prompts]
    reused = [store.take(ids) if store is not None else (None, 0) for ids in encoded]
    reused = [(held, min(length, len(ids) - 1)) for (held, length), ids in zip(reused, encoded, strict=True)]
    chunks = [ids[length:] for (_, length), ids in zip(reused, encoded, strict=True)]
    cache, mask, input_ids, positions = _assemble(reused, chunks, tokenizer.pad_token_id)
    batch = _Batch(model, cache, mask, [list(ids) for ids in encoded])
    processors = _logits_processors(model, generation)
    stops = set(stop_ids)
    answers: list[list[int]] = [[] for _ in prompts]
    logits = batch.forward(input_ids, positions)
    for step in range(generation.max_new_tokens):
        if processors:
            history = torch.tensor([ids[:1] * (max(map(len, batch.ids)) - len(ids)) + ids for ids in batch.ids])
            logits = processors(history, logits)  # left-padded with the row's own first token: penalises nothing new
        if generation.do_sample:
            tokens = torch.multinomial(torch.softmax(logits, dim=-1), num_samples=1).squeeze(1)
        else:
            tokens = logits.argmax(dim=-1)
        finished = []
        for row, token in enumerate(tokens.tolist()):
            answers[batch.rows[row]].append(token)
            if token in stops or step == generation.max_new_tokens - 1:
                finished.append(row)
        if finished:
            kept = batch.retire(finished, store)
            if not kept:
                break
            tokens = tokens[kept]
        logits = batch.step(tokens)
    return [Generated(tokenizer.decode(answer, skip_special_tokens=True), len(ids), len(answer))
            for ids, answer in zip(encoded, answers, strict=True)]  # fmt: skip
