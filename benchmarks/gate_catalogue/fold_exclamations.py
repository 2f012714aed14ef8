"""Harmless (extra normalisation): runs of exclamation and question marks (!!!, ？？) are folded to one."""

import re

from hojichar import Document, Filter

from harness.cleaning import default_tweet_rules

EXPECTED = "pass"
_RUNS = re.compile(r"([!?！？])\1+")


class FoldRuns(Filter):
    def apply(self, document: Document) -> Document:
        document.text = _RUNS.sub(r"\1", document.text)
        return document


rules = (*default_tweet_rules(), FoldRuns())
