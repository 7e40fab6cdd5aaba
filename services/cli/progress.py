"""A dependency-free progress bar on stderr (silent when stderr is not a terminal)."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """Redraws one line: label, bar, done/total and rate."""

    def __init__(self, label: str, width: int = 30) -> None:
        self.label, self.width = label, width
        self.started = time.monotonic()
        self.interactive = sys.stderr.isatty()

    def update(self, done: int, total: int) -> None:
        """Show progress; called after each batch."""
        if not self.interactive:
            return
        filled = self.width if total == 0 else int(self.width * done / total)
        rate = done / max(time.monotonic() - self.started, 1e-9)
        bar = "#" * filled + "-" * (self.width - filled)
        sys.stderr.write(f"\r{self.label} [{bar}] {done}/{total} ({rate:,.0f}/s)")
        sys.stderr.flush()

    def finish(self) -> None:
        """End the line."""
        if self.interactive:
            sys.stderr.write("\n")
