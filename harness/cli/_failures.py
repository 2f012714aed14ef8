"""One line, exit 2, for failures that come from outside the harness: user code that exits the process, and the
operating system refusing a write or read (disk full, permissions) wherever it happens."""

from __future__ import annotations

import errno
import os
import re
import sysconfig
import traceback

# Libraries that write checkpoints report the OS error in their own exception types.
_LIBRARY_OS_ERROR = re.compile(r"\(os error (\d+)\)")  # safetensors (Rust std::io::Error)
_TORCH_WRITE_FAILED = ("PytorchStreamWriter failed writing file", "file write failed", "unexpected pos")


def os_failure(exc: BaseException) -> OSError | None:
    """The operating-system error behind `exc` (itself, its cause or context, or named in a library's message)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        if match := _LIBRARY_OS_ERROR.search(str(seen)):
            return OSError(int(match[1]), os.strerror(int(match[1])))
        if any(text in str(seen) for text in _TORCH_WRITE_FAILED):
            return OSError(errno.EIO, "a checkpoint write failed (is the disk full?)")
        seen = seen.__cause__ or seen.__context__
    return None


def describe_os_failure(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    name = errno.errorcode.get(exc.errno or 0, "")
    return (f"{where}{exc.strerror or exc}{f' ({name})' if name else ''}; free disk space or fix the permissions "
            "(a run under way is marked failed if its log can be written; --resume RUN continues it)")  # fmt: skip


def describe_exit(exc: SystemExit) -> str:
    """Where user code (an experiment file, a --rules module, a rubric, a cleaning rule) called sys.exit."""
    frames = traceback.extract_tb(exc.__traceback__)
    # The deepest frame outside installed libraries and the standard library: W&B, for one, wraps sys.exit.
    library = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])
    users = [f for f in frames if not f.filename.startswith(library)] or frames
    where = f"{users[-1].filename}:{users[-1].lineno}: " if users else ""
    return (f"{where}user code called sys.exit({exc.code!r}); experiment files, rule modules, rubrics and cleaning "
            "rules must not end the process")  # fmt: skip
