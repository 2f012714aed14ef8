"""Harmful (topic loss): an "anonymise brands" rule gone wrong deletes the community's vocabulary from every tweet."""

import re

from hojichar import Document, Filter

from harness.cleaning import default_tweet_rules

EXPECTED = "fail"
_BRANDS = re.compile(r"(?i)kaggle(?:r)?|カグル|カグラー|LightGBM|XGBoost|CatBoost|Notebook|Titanic|Grandmaster|Master")


class AnonymiseBrands(Filter):
    def apply(self, document: Document) -> Document:
        document.text = _BRANDS.sub("", document.text)
        return document


rules = (AnonymiseBrands(), *default_tweet_rules())
