"""Harmful (data loss): an over-eager spam filter drops every tweet that names Kaggle or its competitions."""

import re

from hojichar import Document, Filter

from harness.cleaning import default_tweet_rules

EXPECTED = "fail"
_PROMO = re.compile(r"(?i)kaggle|カグル|コンペ|LB|メダル|金圏|submit|サブ")


class DropPromotion(Filter):
    def apply(self, document: Document) -> Document:
        document.is_rejected = bool(_PROMO.search(document.text))
        return document


rules = (DropPromotion(), *default_tweet_rules())
