"""Harmless (small threshold): the maximum length goes from 280 to 70 characters (the longest 2 % go)."""

from harness.cleaning import LengthRange, default_tweet_rules

EXPECTED = "pass"
rules = tuple(LengthRange(max_doc_len=70) if isinstance(r, LengthRange) else r for r in default_tweet_rules())
