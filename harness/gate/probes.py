"""Teacher-forced probes of a fine-tuned model on fixed, versioned probe sets: fluency, topic, artefacts.

Free generations turn tiny logit differences into different conversations; reading fixed text under the model
does not, so two fine-tunes on nearly the same data score nearly the same (README: "Cleaning and the gate").
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROBES_DIR = Path(__file__).resolve().parents[2] / "data" / "probes"
DEBATES = "debates-v1.jsonl"
PAIRS = "artefact-pairs-v1.jsonl"
TERMS = "topic-terms-v1.txt"
# Characters that open a tweet artefact (hashtag, mention) and the tokens that open an emoji: the embedded
# tokenizer spells supplementary-plane emoji as UTF-8 bytes, whose first byte is 0xF0, others as <|emojiN|>.
ARTEFACT_CHARS = ("#", "＃", "@", "＠")
HIGHER_IS_BETTER = {
    "bits_per_char": False,
    "topic_bits": False,
    "topic_margin": True,
    "artefact_mass": False,
    "artefact_pairs": False,
}
"""Each probe's direction: bits per character and artefact scores fall as the model gets better."""


@dataclass(frozen=True)
class ProbeSet:
    """Clean debates (each turn read after its topic line and the turns before it) and artefact minimal pairs."""

    debates: tuple[dict[str, Any], ...]
    pairs: tuple[dict[str, Any], ...]
    terms: tuple[str, ...]
    """The community's topic vocabulary (`Kaggle`, `LB`, `特徴量`, ...) whose characters `topic_bits` reads."""
    version: str
    """Hash of the probe files: a new probe set is a new cache key."""


@functools.cache
def probe_set(directory: Path = PROBES_DIR) -> ProbeSet:
    raw = [(directory / name).read_bytes() for name in (DEBATES, PAIRS, TERMS)]
    debates, pairs = ([json.loads(line) for line in r.decode("utf-8").splitlines() if line.strip()] for r in raw[:2])
    terms = tuple(line.strip() for line in raw[2].decode("utf-8").splitlines() if line.strip())
    return ProbeSet(tuple(debates), tuple(pairs), terms, hashlib.sha256(b"\0".join(raw)).hexdigest()[:16])


def _header(topic: str, speakers: list[str]) -> str:
    """The debate prompt's first line, as `harness.evaluation.debate.PROMPT` writes it."""
    return f"テーマ「{topic}」について、{'と'.join(speakers)}が議論する。\n"


def _pieces(text: str, terms: re.Pattern[str]) -> list[tuple[str, bool]]:
    """The text cut into (piece, is a topic term) in order."""
    out, at = [], 0
    for m in terms.finditer(text):
        out += [(text[at : m.start()], False), (m.group(), True)]
        at = m.end()
    return [(p, term) for p, term in [*out, (text[at:], False)] if p]


def _sequences(probes: ProbeSet) -> list[tuple[str, list[tuple[str, int, bool]]]]:
    """(role, pieces): each piece is (text, scored turn number or -1 for prompt text, is a topic term)."""
    terms = re.compile("|".join(sorted(map(re.escape, probes.terms), key=len, reverse=True)))
    out = []
    for d in probes.debates:
        for role, topic in (("own", d["topic"]), ("off", d["off_topic"])):
            pieces = [(_header(topic, d["speakers"]), -1, False)]
            for i, text in enumerate(d["turns"]):
                pieces.append((f"{d['speakers'][i % len(d['speakers'])]}：", -1, False))
                pieces += [(p, i, term) for p, term in _pieces(text, terms)]
                pieces.append(("\n", -1, False))
            out.append((role, pieces))
    for p in probes.pairs:
        prompt = _header(p["topic"], ["Kaggleアンチ", "Kaggleファン"]) + f"{p['speaker']}："
        for kind in ("clean", "artefacted"):
            out.append((kind, [(prompt, -1, False), (p[kind], 0, False), ("\n", -1, False)]))
    return out


def _artefact_ids(tokenizer: Any) -> list[int]:
    vocab = tokenizer.get_vocab()
    names = [*ARTEFACT_CHARS, "<|byte240|>", *(t for t in vocab if t.startswith("<|emoji"))]
    return sorted(vocab[n] for n in names if n in vocab)


def score(model: Any, tokenizer: Any, probes: ProbeSet | None = None, batch_size: int = 16) -> dict[str, float]:
    """The probe values of `model` (read in eval mode, no gradients) on the probe set.

    - `bits_per_char`: bits per character of the clean debate turns after their own topic (fluency; lower is better).
    - `topic_bits`: bits per character of the topic terms inside those turns (relevance: does the model know the
      community's words; lower is better).
    - `topic_margin`: bits per character gained by reading each turn after its own topic rather than an unrelated
      everyday one (relevance: does the model tie the talk to the topic; higher is better).
    - `artefact_mass`: mean probability, over every position of the clean turns, of a next token that opens an
      artefact (`#`, `@`, an emoji; lower is better).
    - `artefact_pairs`: mean of log2 p(artefacted turn) - log2 p(clean turn) over the minimal pairs (lower is better).
    """
    import torch

    probes = probes or probe_set()
    encoded = []
    for role, pieces in _sequences(probes):
        ids: list[int] = []
        turn: list[int] = []
        term: list[bool] = []
        chars: dict[int, int] = {}
        term_chars = 0
        for text, number, is_term in pieces:
            piece = tokenizer(text, add_special_tokens=False)["input_ids"]
            ids += piece
            turn += [number] * len(piece)
            term += [is_term] * len(piece)
            term_chars += len(text) if is_term else 0
            if number >= 0:
                chars[number] = chars.get(number, 0) + len(text)
        encoded.append((role, ids, torch.tensor(turn), torch.tensor(term), chars, term_chars))
    artefact = torch.tensor(_artefact_ids(tokenizer))
    totals = {role: [0.0, 0] for role in ("own", "off", "clean", "artefacted", "term")}
    margins: list[float] = []
    pairs: list[float] = []
    mass: list[torch.Tensor] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(encoded), batch_size):
                batch = encoded[start : start + batch_size]
                width = max(len(ids) for _, ids, *_ in batch)
                pad = tokenizer.pad_token_id
                input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for _, ids, *_ in batch])
                mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for _, ids, *_ in batch])
                logp = torch.log_softmax(model(input_ids=input_ids, attention_mask=mask).logits.float(), dim=-1)
                for row, (role, ids, turn, term, chars, term_chars) in enumerate(batch):
                    # token t is predicted at position t - 1 (every scored token follows prompt text)
                    targets = torch.tensor(ids[1:])
                    bits = -logp[row, : len(ids) - 1].gather(1, targets[:, None])[:, 0] / math.log(2)
                    scored, is_term = turn[1:], term[1:]
                    per_turn = {n: bits[scored == n].sum().item() for n in chars}
                    totals[role][0] += sum(per_turn.values())
                    totals[role][1] += sum(chars.values())
                    if role in ("own", "off"):
                        margins += [per_turn[n] / chars[n] * (1 if role == "off" else -1) for n in sorted(chars)]
                    if role in ("clean", "artefacted"):
                        pairs.append(per_turn[0] * (1 if role == "clean" else -1))
                    if role == "own":
                        totals["term"][0] += bits[is_term].sum().item()
                        totals["term"][1] += term_chars
                        # every next-token distribution that predicts a turn's token or what follows its last one
                        at = torch.nonzero((turn[1:] >= 0) | (turn[:-1] >= 0))[:, 0]
                        mass.append(logp[row, at][:, artefact].exp().sum(dim=1))
    finally:
        model.train(was_training)
    own_turns = sum(len(d["turns"]) for d in probes.debates)
    return {
        "bits_per_char": totals["own"][0] / totals["own"][1],
        "topic_bits": totals["term"][0] / max(totals["term"][1], 1),
        "topic_margin": sum(margins) / own_turns,
        "artefact_mass": torch.cat(mass).mean().item(),
        "artefact_pairs": sum(pairs) / len(probes.pairs),
    }
