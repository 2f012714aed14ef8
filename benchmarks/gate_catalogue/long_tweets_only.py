"""Harmful (data loss): a minimum length of 60 characters, meant to keep "substantial" tweets, drops half the corpus."""

from harness.cleaning import LengthRange, default_tweet_rules

EXPECTED = "fail"
rules = tuple(LengthRange(min_doc_len=60) if isinstance(r, LengthRange) else r for r in default_tweet_rules())
