"""Harmful (artefacts kept): URLs stay in the training text (`RemoveURLs` left out)."""

from harness.cleaning import RemoveURLs, default_tweet_rules

EXPECTED = "fail"
rules = tuple(r for r in default_tweet_rules() if not isinstance(r, RemoveURLs))
