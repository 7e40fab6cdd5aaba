"""Watching tasks files: each save is applied once, and no save can stop the watcher."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from services.declarative.watch import watch_files


def save(path: Path, text: str, mtime: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime, mtime))  # a new stamp even within the filesystem's clock tick


@pytest.mark.timeout(10)
async def test_a_save_that_breaks_the_applier_is_logged_and_the_next_one_applied(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tasks.yaml"
    save(path, "first", 1_000_000_000)
    calls: list[Path] = []
    stop = asyncio.Event()

    async def apply_path(changed: Path) -> bool:
        calls.append(changed)
        if len(calls) == 1:
            save(path, "second", 2_000_000_000)  # the user saves again meanwhile
            raise TypeError("a bug in applying")
        stop.set()
        return True

    with capture_logs() as logs:
        await watch_files([path], apply_path, stop, poll_seconds=0.01)
    assert calls == [path, path]
    (failure,) = [entry for entry in logs if entry["log_level"] == "error"]
    assert failure["event"] == "applying a tasks file failed unexpectedly"
    assert failure["path"] == str(path)
