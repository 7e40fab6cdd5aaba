"""Applying tasks files when they change: at start, then on every save (mtime polling).

A save that does not validate is reported and ignored: the tasks stay as the last good
version made them. So is a save that applying fails on unexpectedly (a bug): the watcher, and
the `ordinaut up` it may run in, goes on. Polling needs no extra dependency and works on every
filesystem.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)
POLL_SECONDS = 0.3
Stamp = tuple[int, int, int] | None


def stamp(path: Path) -> Stamp:
    """What changes when the file is saved (editors that replace the file change the inode)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


async def watch_files(
    paths: Sequence[Path],
    apply_path: Callable[[Path], Awaitable[object]],
    stop: asyncio.Event,
    *,
    poll_seconds: float = POLL_SECONDS,
) -> None:
    """Apply each file now and after every change, until ``stop``.

    ``apply_path`` reports its own outcome (applied, or why not); a missing file (mid-save)
    waits for its next version.
    """
    seen: dict[Path, Stamp] = {}
    while not stop.is_set():
        for path in paths:
            current = stamp(path)
            if current is not None and current != seen.get(path):
                seen[path] = current
                try:
                    await apply_path(path)
                except Exception:  # never take `ordinaut up` down: the next save tries again
                    log.exception("applying a tasks file failed unexpectedly", path=str(path))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), poll_seconds)
