"""Secrets: the values of credential variables, kept out of every sink (run log, W&B, console messages)."""

from __future__ import annotations

import os
import re
from typing import Any

# The variables the libraries we drive read credentials from, and anything named like a credential
# (`*_API_KEY`, `*_TOKEN`, `*_SECRET`, ...): a user's own service keys are as secret as W&B's.
KNOWN = ("WANDB_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OPENAI_API_KEY", "LANGCHAIN_API_KEY",
         "LANGSMITH_API_KEY", "ANTHROPIC_API_KEY", "KAGGLE_KEY")  # fmt: skip
_NAMED_LIKE_A_SECRET = re.compile(
    r"(^|_)(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?)(_|$)"
)
MIN_LENGTH = 6
"""Shorter values are not credentials (`1`, `true`) and replacing them would mangle ordinary text."""


def secret_values() -> list[str]:
    """The values to hide, longest first, so a secret that contains another is hidden whole."""
    values = {
        value
        for name, value in os.environ.items()
        if (name in KNOWN or _NAMED_LIKE_A_SECRET.search(name.upper())) and len(value.strip()) >= MIN_LENGTH
    }
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: list[str] | None = None) -> str:
    """`text` with every credential value replaced by `***`."""
    for secret in secret_values() if secrets is None else secrets:
        text = text.replace(secret, "***")
    return text


def redact_value(value: Any, secrets: list[str] | None = None) -> Any:
    """A JSON-like value (dicts, lists, tuples, strings, keys included) with every credential value replaced."""
    secrets = secret_values() if secrets is None else secrets
    if not secrets:
        return value
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {redact_value(k, secrets): redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v, secrets) for v in value)
    return value
