"""The CLI's text progress bar on stderr."""
from __future__ import annotations

import sys
import time
from typing import IO


class ProgressBar:
    """A small text progress bar on stderr (no tqdm): redrawn in place on a terminal, a line
    every 10 % otherwise."""

    def __init__(self, total: int, stream: IO[str] | None = None, width: int = 30) -> None:
        self.total = max(1, total)
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_draw = 0.0
        self._last_decile = -1

    def update(self, done: int, text: str = "", force: bool = False) -> None:
        """Show ``done`` of ``total`` units with ``text``; redraws are throttled unless ``force``."""
        frac = min(1.0, done / self.total)
        now = time.monotonic()
        if self.tty:
            if not force and now - self._last_draw < 0.2 and done < self.total:
                return
            filled = round(frac * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r[{bar}] {100 * frac:5.1f}% {done}/{self.total} {text}   ")
            if done >= self.total:
                self.stream.write("\n")
        else:
            decile = int(frac * 10)
            if decile == self._last_decile and not force:
                return
            self._last_decile = decile
            self.stream.write(f"{100 * frac:5.1f}% {done}/{self.total} {text}\n")
        self._last_draw = now
        self.stream.flush()
