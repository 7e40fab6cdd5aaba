"""Start `ordinaut up` as a real process, as a user would."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    """One `ordinaut up` process."""

    process: subprocess.Popen[bytes]
    base_url: str
    data_dir: Path
    log: Path

    @property
    def output(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        return self.log.read_text(errors="replace")

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()

    def client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=10)

    async def wait_ready(self, within: float = 60) -> None:
        deadline = asyncio.get_running_loop().time() + within
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as client:
            while asyncio.get_running_loop().time() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"ordinaut up exited:\n{self.output}")
                try:
                    if (await client.get("/health/ready")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError("ordinaut up did not become ready")

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def processes_using(path: Path) -> list[psutil.Process]:
    """Processes whose command line mentions ``path`` (embedded servers left behind)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with_path = any(str(path) in part for part in proc.info["cmdline"] or ())
        if with_path and proc.pid != os.getpid():
            found.append(proc)
    return found


@pytest.fixture
def start_service() -> Iterator[object]:
    """A factory starting `ordinaut up` on a data dir; everything started is stopped after."""
    started: list[Service] = []
    streams: list[tuple[str | None, str]] = []

    def start(
        data_dir: Path, env: dict[str, str] | None = None, args: Sequence[str] = ()
    ) -> Service:
        port = free_port()
        environment = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
        # The events stream of each service is its own: a shared Redis holds many tests' logs.
        environment["ORDINAUT_EVENTS_STREAM"] = f"test-{uuid.uuid4().hex}:events"
        environment.update(env or {})
        streams.append(
            (environment.get("ORDINAUT_REDIS_URL"), environment["ORDINAUT_EVENTS_STREAM"])
        )
        log = data_dir.parent / f"ordinaut-up-{len(started)}.log"
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "services.cli.main",
                    "up",
                    "--port",
                    str(port),
                    "--data-dir",
                    str(data_dir),
                    *args,
                ],
                env=environment,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        service = Service(process, f"http://127.0.0.1:{port}", data_dir, log)
        started.append(service)
        return service

    yield start
    for service in started:
        if service.process.poll() is None:
            # Ctrl-C first, so a failed test leaves no embedded server behind; then no mercy.
            service.process.send_signal(signal.SIGINT)
            try:
                service.process.wait(30)
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait()
    for url, stream in streams:
        if url is not None:
            # a test-owned server may already be gone, and its streams with it
            with redis.Redis.from_url(url) as client, contextlib.suppress(redis.ConnectionError):
                client.delete(stream)
