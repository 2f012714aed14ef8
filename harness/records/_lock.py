"""One writer per run directory: an advisory lock the kernel drops when its holder dies, even by kill -9."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from harness.errors import UserError

LOCK_NAME = ".lock"


class RunDirLock:
    """Held while a process writes a run directory; a second writer gets a one-line UserError (exit 2)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_NAME
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            raise UserError(
                f"{run_dir}: another harness process{f' (pid {pid})' if pid.isdigit() else ''} is writing this run; "
                "wait for it to end or stop it, then try again"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
