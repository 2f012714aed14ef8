"""Harmful (broken text): a normaliser written with NFKD instead of NFKC splits every voiced kana (が -> か + ゙)."""

import unicodedata

from hojichar import Document, Filter

from harness.cleaning import default_tweet_rules

EXPECTED = "fail"


class Decompose(Filter):
    def apply(self, document: Document) -> Document:
        document.text = unicodedata.normalize("NFKD", document.text)
        return document


rules = (*default_tweet_rules(), Decompose())
