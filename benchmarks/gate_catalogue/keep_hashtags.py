"""Harmful (artefacts kept): hashtags stay in the training text (`Unhashtag` left out)."""

from harness.cleaning import Unhashtag, default_tweet_rules

EXPECTED = "fail"
rules = tuple(r for r in default_tweet_rules() if not isinstance(r, Unhashtag))
