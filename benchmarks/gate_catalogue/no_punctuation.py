"""Harmful (broken text): a symbol stripper that also takes Japanese punctuation (。、「」！？) out of every tweet."""

import re

from hojichar import Document, Filter

from harness.cleaning import default_tweet_rules

EXPECTED = "fail"
_SYMBOLS = re.compile(r"[。、「」『』！？!?・…（）()]")


class StripSymbols(Filter):
    def apply(self, document: Document) -> Document:
        document.text = _SYMBOLS.sub("", document.text)
        return document


rules = (*default_tweet_rules(), StripSymbols())
