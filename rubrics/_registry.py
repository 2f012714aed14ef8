"""The rubric registry: a rubric's name is its registry key, W&B key (`rubric/<name>`), column and label."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rubrics.records import Conversation, Score

RubricFn = Callable[[Conversation], Score]
ManyFn = Callable[[Sequence[Conversation]], list[Score]]
REGISTRY: dict[str, Rubric] = {}


@dataclass(frozen=True)
class Rubric:
    """A pure scorer `Conversation -> Score` with the metadata reports and gates need."""

    name: str
    fn: RubricFn = field(repr=False)
    higher_is_better: bool
    data_files: tuple[Path, ...] = ()
    many_fn: ManyFn | None = field(default=None, repr=False)  # scores many at once, equal to `fn` on each

    def __call__(self, conversation: Conversation) -> Score:
        return self.fn(conversation)

    def many(self, conversations: Sequence[Conversation]) -> list[Score]:
        """The scores of many conversations, in order: the same as calling the rubric on each, often much faster."""
        return self.many_fn(conversations) if self.many_fn else [self.fn(c) for c in conversations]

    @property
    def description(self) -> str:
        """The first line of the scorer's docstring: what is measured and which direction is better."""
        return (inspect.getdoc(self.fn) or "").splitlines()[0] if self.fn.__doc__ else ""

    @property
    def version(self) -> str:
        """Hash of the scorer's module source and its frozen data, so a score means the same across runs."""
        digest = hashlib.sha256(inspect.getsource(inspect.getmodule(self.fn)).encode())
        for path in self.data_files:
            digest.update(path.read_bytes())
        return digest.hexdigest()[:12]


def rubric(
    *, higher_is_better: bool, data_files: Iterable[Path] = (), many: ManyFn | None = None
) -> Callable[[RubricFn], Rubric]:
    """Register a scorer under its function name; `many` scores a batch at once, with the same results as `fn`."""

    def register(fn: RubricFn) -> Rubric:
        r = Rubric(fn.__name__, fn, higher_is_better, tuple(data_files), many)
        old = REGISTRY.get(r.name)
        # The same function registered again (its module re-executed, e.g. an experiment file loaded twice) replaces
        # itself; another function under a taken name would silently change what a column, a key and a gate mean.
        if old is not None and (old.fn.__module__, old.fn.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ValueError(f"rubric name {r.name!r} is taken by {old.fn.__module__}.{old.fn.__qualname__}")
        REGISTRY[r.name] = r
        return r

    return register


def get(name: str) -> Rubric:
    """Look a rubric up by name; KeyError lists the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown rubric {name!r}; known: {', '.join(sorted(REGISTRY))}") from None
