"""Harmful (artefacts kept): emoji stay in the training text (`RemoveEmoji` left out).

The contamination rubric does not count emoji, so the data-level artefact rate does not move; the model-level
artefact probes (which include the tokens that open an emoji) have to see it.
"""

from harness.cleaning import RemoveEmoji, default_tweet_rules

EXPECTED = "fail"
rules = tuple(r for r in default_tweet_rules() if not isinstance(r, RemoveEmoji))
