"""What a running `ordinaut up` uses, recorded in its data dir so other commands join it.

`ordinaut up` writes ``<data_dir>/runtime.json`` (mode 0600: the URLs carry passwords) once its
servers answer, and removes it on a clean exit. A reader trusts it only while the recorded
process is alive and is the same process (pid and start time), so a file a killed service left
behind is recognised as stale and ignored.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import msgspec
import psutil

RUNTIME_FILE = "runtime.json"


class Runtime(msgspec.Struct, frozen=True, kw_only=True):
    """The servers and API of a running service, and the process that owns them."""

    pid: int
    started: float  # the owner's process start time, so a reused pid is not mistaken for it
    database_url: str
    redis_url: str
    api_url: str = ""


def _start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def runtime_of_this_process(database_url: str, redis_url: str, api_url: str) -> Runtime:
    """The record this process writes when it serves."""
    pid = os.getpid()
    return Runtime(
        pid=pid,
        started=_start_time(pid) or 0.0,
        database_url=database_url,
        redis_url=redis_url,
        api_url=api_url,
    )


def write_runtime(data_dir: Path, runtime: Runtime) -> None:
    """Record ``runtime`` (mode 0600), replacing any earlier (stale) record at once."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=data_dir, prefix=f".{RUNTIME_FILE}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(msgspec.json.encode(runtime))
        os.replace(temporary, data_dir / RUNTIME_FILE)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def read_runtime(data_dir: Path) -> Runtime | None:
    """The record of a live service on ``data_dir``; None when there is none or it is stale."""
    try:
        runtime = msgspec.json.decode((data_dir / RUNTIME_FILE).read_bytes(), type=Runtime)
    except (OSError, msgspec.DecodeError):
        return None
    started = _start_time(runtime.pid)
    if started is None or abs(started - runtime.started) > 1:
        return None
    return runtime


def remove_runtime(data_dir: Path) -> None:
    """Remove this process's record (never another live service's)."""
    path = data_dir / RUNTIME_FILE
    try:
        runtime = msgspec.json.decode(path.read_bytes(), type=Runtime)
    except (OSError, msgspec.DecodeError):
        return
    if runtime.pid == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
