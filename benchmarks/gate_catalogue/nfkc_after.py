"""Harmless (extra normalisation): HojiChar's own NFKC `DocumentNormalizer` after neologdn."""

from hojichar.filters.document_filters import DocumentNormalizer

from harness.cleaning import default_tweet_rules

EXPECTED = "pass"
rules = (*default_tweet_rules(), DocumentNormalizer())
