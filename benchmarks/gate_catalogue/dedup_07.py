"""Harmless (small threshold): near-duplicates go from Jaccard 0.7 instead of 0.8."""

from harness.cleaning import NearDuplicates, default_tweet_rules

EXPECTED = "pass"
rules = tuple(NearDuplicates(threshold=0.7) if isinstance(r, NearDuplicates) else r for r in default_tweet_rules())
