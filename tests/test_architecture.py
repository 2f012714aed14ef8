"""The tree reads like the run: imports flow one way, from the command line down to the rubrics, with no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Highest first: a stage may import the stages below it, never one above it. Facade modules (harness/__init__.py,
# harness/cleaning.py, harness/experiment.py, harness/__main__.py) re-export for users and sit above everything.
LAYERS = ("cli", "gate|compare", "training", "evaluation", "data", "spec", "records", "errors|distributed", "rubrics")
FACADES = {"harness", "harness.__main__", "harness.cleaning", "harness.experiment"}
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in ("harness", "rubrics") for p in (ROOT / package).rglob("*.py")}


def _imports(path: Path, known: set[str]) -> set[str]:
    """Every project module `path` imports, at any depth of the file (imports inside functions count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import mod` imports pkg.mod when that is a module, else a name from pkg
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names
            ]
        found |= {n for n in names if n in known}
    return found


def _layer(module: str) -> int:
    if module.startswith("rubrics"):
        return LAYERS.index("rubrics")
    stage = module.split(".")[1]
    return next(i for i, layer in enumerate(LAYERS) if stage in layer.split("|"))


GRAPH = {name: _imports(path, set(_modules())) - {name} for name, path in _modules().items()}


def test_rubrics_import_nothing_from_harness():
    offenders = {m: sorted(i for i in deps if i.startswith("harness")) for m, deps in GRAPH.items()}
    assert {m: d for m, d in offenders.items() if m.startswith("rubrics") and d} == {}


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m not in FACADES and m.startswith("harness.")))
def test_a_stage_imports_only_the_stages_below_it(module):
    upward = sorted(d for d in GRAPH[module] if d in FACADES or (_layer(d) < _layer(module)))
    assert upward == [], f"{module} imports {upward} from a stage above it (order: {' > '.join(LAYERS)})"


def test_no_import_cycle():
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        seen[module] = 1
        for dep in sorted(GRAPH[module]):
            if seen.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path[path.index(dep) :], dep]))
            if dep not in seen:
                visit(dep, [*path, dep])
        seen[module] = 2

    for module in sorted(GRAPH):
        if module not in seen:
            visit(module, [module])


def test_harness_is_split_into_stage_packages_and_no_module_is_huge():
    stages = [p.name for p in (ROOT / "harness").iterdir() if (p / "__init__.py").exists()]
    assert len(stages) >= 4
    too_long = {
        str(p.relative_to(ROOT)): n for p in _modules().values() if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert too_long == {}


def test_the_documented_import_paths_still_work():
    from harness import Experiment, Scenario, default_tweet_rules, load_run  # noqa: F401
    from harness.cleaning import default_tweet_rules as rules  # noqa: F401
    from harness.experiment import GateSpec  # noqa: F401
    from rubrics import Conversation, Score, Turn, contamination, fluency, relevance  # noqa: F401
