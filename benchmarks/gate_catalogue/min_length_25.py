"""Harmless (small threshold): the minimum length goes from 10 to 25 characters (2 % of the cleaned tweets go)."""

from harness.cleaning import LengthRange, default_tweet_rules

EXPECTED = "pass"
rules = tuple(LengthRange(min_doc_len=25) if isinstance(r, LengthRange) else r for r in default_tweet_rules())
