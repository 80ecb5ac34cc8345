"""A plain-text progress bar on stderr (redrawn in place on a terminal, milestones otherwise)."""

from __future__ import annotations

import sys
from typing import TextIO


class Progress:
    def __init__(self, total: int, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.total, self.label, self.width = max(1, total), label, width
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.done = self.errors = 0
        self._last_decile = -1
        self._closed = False

    def line(self) -> str:
        filled = self.width * self.done // self.total
        bar = "#" * filled + "-" * (self.width - filled)
        return f"[{bar}] {self.done}/{self.total} {self.label}" + (f"  errors {self.errors}" if self.errors else "")

    def advance(self, *, error: bool = False) -> None:
        self.done += 1
        self.errors += int(error)
        if self.tty:
            self.stream.write("\r" + self.line())
        else:
            decile = 10 * self.done // self.total
            if decile == self._last_decile:
                return
            self._last_decile = decile
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
