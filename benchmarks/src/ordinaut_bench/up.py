"""Start-up time: from launching `ordinaut up` (embedded PostgreSQL and Valkey) to the first
200 from /health/ready, on a fresh data directory (initdb, migrations, a new admin token) and
on a warm one (the same directory again, everything already there)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import TextIO

from ordinaut_bench.harness import Goal
from ordinaut_bench.http_client import ConnectionPool, HttpError, RequestBytes
from ordinaut_bench.report import print_table
from services.cli.progress import ProgressBar

GOALS = (
    Goal("fresh_ready_seconds", 3.0, at_least=False, text="`ordinaut up` ready ≤ 3 s (fresh)"),
    Goal("warm_ready_seconds", 3.0, at_least=False, text="`ordinaut up` ready ≤ 3 s (warm)"),
)
LIMITS: str | None = (
    "A fresh data dir: the embedded PostgreSQL's initdb and the migrations come on top of a warm"
    " start (quiet machine: fresh 3.8 s against warm 2.7 s). Importing the API (Litestar and"
    " the routes) is the rest of a warm start's CPU; the MCP SDK no longer counts, it loads in"
    " a thread after the API serves. Next: start the embedded servers while the API's modules"
    " import, and keep an initialised cluster template in the wheel's data for fresh dirs."
)
READY_WITHIN_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _launch(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    # Only the embedded servers: no configured database or Redis may leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
    env["ORDINAUT_LOG_LEVEL"] = "warning"
    with (data_dir.parent / f"{data_dir.name}.log").open("ab") as log:
        return subprocess.Popen(  # noqa: S603 - our own argv
            [
                sys.executable,
                "-m",
                "services.cli.main",
                "up",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def _ready_after(process: subprocess.Popen[bytes], port: int, started: float) -> float:
    """Seconds from ``started`` to the first 200 from /health/ready (polled every 20 ms)."""
    probe = ConnectionPool("127.0.0.1", port, 1, timeout=2)
    request = RequestBytes("GET", "/health/ready", f"127.0.0.1:{port}").encode()
    try:
        while time.monotonic() - started < READY_WITHIN_SECONDS:
            if process.poll() is not None:
                raise RuntimeError(f"ordinaut up exited with status {process.returncode}")
            try:
                if (await probe.request(request)).status == 200:
                    return time.monotonic() - started
            except HttpError:
                pass
            await asyncio.sleep(0.02)
    finally:
        await probe.close()
    raise RuntimeError(f"ordinaut up was not ready within {READY_WITHIN_SECONDS:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _start_once(data_dir: Path) -> float:
    port = _free_port()
    started = time.monotonic()
    process = _launch(data_dir, port)
    try:
        return await _ready_after(process, port, started)
    finally:
        await asyncio.to_thread(_stop, process)


async def bench_up(*, rounds: int = 3, out: TextIO = sys.stdout) -> dict[str, float]:
    """``rounds`` times: start on a new data dir (fresh), stop, start again (warm)."""
    fresh: list[float] = []
    warm: list[float] = []
    bar = ProgressBar("ordinaut up starts")
    with tempfile.TemporaryDirectory(prefix="ordinaut-bench-up-") as tmp:
        for n in range(rounds):
            data_dir = Path(tmp) / f"data-{n}"
            fresh.append(await _start_once(data_dir))
            warm.append(await _start_once(data_dir))
            bar.update(n + 1, rounds)
    bar.finish()
    figures = {
        "rounds": float(rounds),
        "fresh_ready_seconds": median(fresh),
        "fresh_max_seconds": max(fresh),
        "warm_ready_seconds": median(warm),
        "warm_max_seconds": max(warm),
    }
    print_table(
        [
            {"start": "fresh (median)", "seconds": figures["fresh_ready_seconds"]},
            {"start": "warm (median)", "seconds": figures["warm_ready_seconds"]},
        ],
        out,
    )
    return figures
