"""Harmful (broken text): a "keep tweets short" rule that cuts every tweet after 30 characters, mid-word."""

from hojichar import Document, Filter

from harness.cleaning import default_tweet_rules

EXPECTED = "fail"


class Truncate(Filter):
    def apply(self, document: Document) -> Document:
        document.text = document.text[:30]
        return document


rules = (*default_tweet_rules(), Truncate())
