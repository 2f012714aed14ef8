import hashlib

import pytest

from rubrics import build
from rubrics.fluency import MODEL as FLUENCY_MODEL
from rubrics.relevance import MODEL as RELEVANCE_MODEL


def test_training_data_is_disjoint_from_validation():
    held_out = build.validation_texts()
    training = {text for text, _, _ in build.labelled_relevance() + build.labelled_context()}
    training |= {row["text"] for row in build.read_jsonl(build.TRAIN / "natural.jsonl")}
    assert held_out and not held_out & training


@pytest.mark.slow
def test_build_reproduces_the_shipped_artefacts(tmp_path):
    assert build.main(["--out", str(tmp_path)]) == 0
    for shipped in (FLUENCY_MODEL, RELEVANCE_MODEL):
        rebuilt = tmp_path / shipped.name
        assert hashlib.sha256(rebuilt.read_bytes()).digest() == hashlib.sha256(shipped.read_bytes()).digest()


def test_frozen_artefacts_stay_small():
    assert sum(p.stat().st_size for p in FLUENCY_MODEL.parent.iterdir()) < 2 * 1024 * 1024
