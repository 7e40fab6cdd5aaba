"""The runtime file of `ordinaut up`: private, trusted only while its process lives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec

from services.runtime.runtime_file import (
    RUNTIME_FILE,
    Runtime,
    read_runtime,
    remove_runtime,
    runtime_of_this_process,
    write_runtime,
)


def test_a_live_service_is_found_and_its_file_is_private(tmp_path: Path) -> None:
    runtime = runtime_of_this_process("postgresql://u:p@/db", "redis://default:p@h:1/0", "http://x")
    write_runtime(tmp_path / "data", runtime)
    assert read_runtime(tmp_path / "data") == runtime
    assert (tmp_path / "data" / RUNTIME_FILE).stat().st_mode & 0o777 == 0o600
    remove_runtime(tmp_path / "data")
    assert read_runtime(tmp_path / "data") is None


def test_a_file_left_by_a_dead_process_is_stale_and_not_removed_by_others(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = Runtime(pid=int(dead.stdout), started=0.0, database_url="d", redis_url="r")
    (tmp_path / RUNTIME_FILE).write_bytes(msgspec.json.encode(stale))
    assert read_runtime(tmp_path) is None
    remove_runtime(tmp_path)  # not this process's record: left alone
    assert (tmp_path / RUNTIME_FILE).exists()


def test_a_reused_pid_is_not_mistaken_for_the_service(tmp_path: Path) -> None:
    mine = runtime_of_this_process("d", "r", "")
    older = msgspec.structs.replace(mine, started=mine.started - 3600)  # same pid, other process
    (tmp_path / RUNTIME_FILE).write_bytes(msgspec.json.encode(older))
    assert read_runtime(tmp_path) is None


def test_a_damaged_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / RUNTIME_FILE).write_text("{not json")
    assert read_runtime(tmp_path) is None
