"""Harmless (reorder): the language filter and deduplication run before the artefact strippers."""

from harness.cleaning import Japanese, NearDuplicates, default_tweet_rules

EXPECTED = "pass"
_early = (Japanese, NearDuplicates)
rules = (*(r for r in default_tweet_rules() if isinstance(r, _early)),
         *(r for r in default_tweet_rules() if not isinstance(r, _early)))  # fmt: skip
