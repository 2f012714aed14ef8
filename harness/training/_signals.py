"""How a run stops early (a signal, a diverged loss). No transformers import here: a run catches signals, and takes
its run directory's lock, before the heavy libraries load (and print)."""

from __future__ import annotations

import signal
import sys
from typing import Any


class StopRequest:
    """SIGINT/SIGTERM ask the run to stop after the current step; a second SIGINT aborts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        print(f"harness: {signal.Signals(signum).name}: stopping after this step (checkpoint and run log are "
              "flushed; Ctrl-C again aborts now)", file=sys.stderr, flush=True)  # fmt: skip


class Diverged(RuntimeError):
    """The loss became NaN or infinite: the run cannot continue meaningfully."""
