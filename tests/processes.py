"""Ordinaut's processes (`ordinaut api`, `timer`, `worker`, `relay`, `notifier`) started for
real by a test, each with its own ops port and log, against the servers the test names."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.e2e.conftest import free_port


@dataclass
class Process:
    """One `ordinaut <name>` process and its ops port."""

    name: str
    process: subprocess.Popen[bytes]
    ops_port: int
    log: Path
    api_port: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        text = self.log.read_text(errors="replace")
        return f"--- {self.name} (pid {self.process.pid}) ---\n{text[-chars:]}"


@dataclass
class Fleet:
    """Every started process, by kind, sharing one environment and log folder."""

    env: dict[str, str]
    logs: Path
    by_kind: dict[str, list[Process]] = field(default_factory=lambda: defaultdict(list))
    began: float = field(default_factory=time.monotonic)
    _started: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def all(self) -> list[Process]:
        return [p for group in self.by_kind.values() for p in group]

    def tails(self) -> str:
        return "\n".join(p.tail() for p in self.all)

    async def start(self, name: str, **env: str) -> Process:
        """Start one more `ordinaut <name>` and wait until it is ready (on other ports if
        another test took its free port meanwhile)."""
        process = start_process(name, next(self._started), self.env | env, self.logs)
        await ready(process)
        process = await restarted_if_port_taken(process, self.env | env, self.logs)
        self.by_kind[name].append(process)
        return process

    def kill_all(self) -> None:
        for process in self.all:
            if process.alive:
                process.process.kill()
                process.process.wait()


def environment(
    database_url: str, redis_url: str, stream: str, data_dir: Path, admin_token: str
) -> dict[str, str]:
    """The variables every process of one deployment shares (nothing else ORDINAUT_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
    env |= {
        "ORDINAUT_DATABASE_URL": database_url,
        "ORDINAUT_REDIS_URL": redis_url,
        "ORDINAUT_EVENTS_STREAM": stream,
        "ORDINAUT_DATA_DIR": str(data_dir),  # secret and webhook keys come from here
        "ORDINAUT_ADMIN_TOKEN": admin_token,
        "ORDINAUT_LOG_LEVEL": "warning",
        "ORDINAUT_LOG_FORMAT": "json",
    }
    return env


def start_process(
    name: str, n: int, env: dict[str, str], logs: Path, api_port: int | None = None
) -> Process:
    """`ordinaut <name>` on free ops (and API) ports, or the API on ``api_port`` (to start it
    again where its clients expect it); its output goes to ``logs/<name>-<n>.log``."""
    ops_port = free_port()
    if name == "api" and api_port is None:
        api_port = free_port()
    env = env | {"ORDINAUT_METRICS_PORT": str(ops_port)}
    if api_port is not None:
        env["ORDINAUT_PORT"] = str(api_port)
    log = logs / f"{name}-{n}.log"
    logs.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", name],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return Process(name, process, ops_port, log, api_port)


async def restarted_if_port_taken(process: Process, env: dict[str, str], logs: Path) -> Process:
    """The process, or a new one on other ports if its free port was taken meanwhile (by
    another test on this machine: free_port cannot reserve it)."""
    for attempt in itertools.count(1):
        if process.alive or attempt > 3:
            return process
        assert "Address already in use" in process.tail(), process.tail()
        process = start_process(process.name, 1000 * attempt + process.pid, env, logs)
        await ready(process)
    raise AssertionError("unreachable")


async def ready(process: Process, within: float = 60) -> None:
    """Until the process answers 200 on /health/ready (or exits because its port was taken)."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{process.ops_port}") as client:
        while time.monotonic() < deadline:
            if not process.alive:
                if "Address already in use" in process.tail():
                    return  # the caller starts it again on other ports
                raise AssertionError(f"{process.name} exited:\n{process.tail()}")
            try:
                if (await client.get("/health/ready", timeout=2)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"{process.name} did not become ready:\n{process.tail()}")


async def kill(process: Process) -> None:
    """SIGKILL, and wait until it is gone."""
    process.process.send_signal(signal.SIGKILL)
    assert await asyncio.to_thread(process.process.wait, 10) == -signal.SIGKILL


async def stop(processes: list[Process], within: float = 60) -> dict[str, int]:
    """SIGTERM them all; their exit codes by ``name-pid``."""
    for process in processes:
        process.process.send_signal(signal.SIGTERM)
    codes = await asyncio.gather(*(asyncio.to_thread(p.process.wait, within) for p in processes))
    return {f"{p.name}-{p.pid}": code for p, code in zip(processes, codes, strict=True)}
