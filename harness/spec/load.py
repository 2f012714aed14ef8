"""Loading an experiment file: run it as a module and take the one Experiment it defines."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import traceback
from pathlib import Path

from harness.errors import UserError
from harness.spec.experiment import Experiment


def _line_in(path: Path, exc: BaseException) -> str:
    """`:LINE` of the deepest frame inside the experiment file, so the message points at the offending call."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
    return f":{frames[-1].lineno}" if frames else ""


def load_experiment(path: str | Path) -> Experiment:
    """The Experiment defined by the file at `path`, named after the file; every mistake is a one-line UserError."""
    file = Path(path).resolve()
    if not file.is_file():
        raise UserError(f"{path}: no such experiment file")
    if file.suffix != ".py":
        raise UserError(f"{path}: an experiment is a Python file (.py)")
    spec = importlib.util.spec_from_file_location(f"harness_experiment_{file.stem}", file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered like an imported module, so a rubric defined in the file can be versioned from its source.
    sys.modules[spec.name] = module
    sys.path.insert(0, str(file.parent.parent))  # experiments may import project modules (rubrics, helpers)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise UserError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except UserError as exc:
        raise UserError(f"{path}{_line_in(file, exc)}: {exc}") from None
    except Exception as exc:
        raise UserError(f"{path}{_line_in(file, exc)}: {type(exc).__name__}: {exc}") from None
    except SystemExit as exc:  # exit 0 from an experiment file must not pass for a successful run (or gate)
        raise UserError(f"{path}{_line_in(file, exc)}: the experiment file called sys.exit({exc.code!r}); it must "
                        "define an Experiment, not end the process") from None  # fmt: skip
    finally:
        sys.path.remove(str(file.parent.parent))
    found = [v for v in vars(module).values() if isinstance(v, Experiment)]
    if not found:
        raise UserError(f"{path}: defines no Experiment; assign one, e.g. `experiment = Experiment(...)`")
    if len(found) > 1:
        names = [k for k, v in vars(module).items() if isinstance(v, Experiment)]
        raise UserError(f"{path}: defines {len(found)} Experiments ({', '.join(names)}); keep exactly one per file")
    return dataclasses.replace(found[0], name=file.stem)
