"""Cleaning rules for experiment files (`from harness.cleaning import ...`): see harness/data/cleaning.py."""

from harness.data.cleaning import (
    Japanese,
    LengthRange,
    NearDuplicates,
    Normalise,
    RemoveEmoji,
    RemoveMentions,
    RemoveURLs,
    Rule,
    StripRetweet,
    Unhashtag,
    default_tweet_rules,
)

__all__ = [
    "Japanese",
    "LengthRange",
    "NearDuplicates",
    "Normalise",
    "RemoveEmoji",
    "RemoveMentions",
    "RemoveURLs",
    "Rule",
    "StripRetweet",
    "Unhashtag",
    "default_tweet_rules",
]
