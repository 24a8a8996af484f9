"""A progress bar on stderr, drawn only when stderr is a terminal.

For anything that can take seconds (large reads, physical scans,
conversions): ``with Progress(total, "scan") as bar: bar.update(done)``.
Off a terminal, or with total 0, it draws nothing, so output piped or
captured stays clean.  It appears only after half a second, so quick
operations never flash a bar.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Optional, TextIO

WIDTH = 30
# seconds before the bar first shows (PYKVM_PROGRESS_DELAY overrides)
DELAY = float(os.environ.get("PYKVM_PROGRESS_DELAY", "0.5"))
EVERY = 0.1  # seconds between redraws


class Progress:
    """A bar for ``total`` units of work; ``update(done)`` as it goes."""

    def __init__(self, total: int, label: str, stream: Optional[TextIO] = None):
        self.total = int(total)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = self.total > 0 and callable(isatty) and bool(isatty())
        self._start = time.monotonic()
        self._last = 0.0
        self._shown = False

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._start < DELAY or (now - self._last < EVERY and done < self.total):
            return
        self._last = now
        frac = min(max(done / self.total, 0.0), 1.0)
        bar = "#" * int(frac * WIDTH)
        elapsed = now - self._start
        eta = f" {elapsed / frac - elapsed:4.0f} s left" if 0 < frac < 1 else ""
        self.stream.write(f"\r{self.label} [{bar:<{WIDTH}}] {frac * 100:5.1f}%{eta}")
        self.stream.flush()
        self._shown = True

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._shown:  # clear the line: what follows starts clean
            self.stream.write("\r" + " " * (len(self.label) + WIDTH + 24) + "\r")
            self.stream.flush()
