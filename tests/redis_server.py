"""A redis-server of a test's own, for tests that stop or restart Redis (the shared one must
never go down)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as redis

from tests.tools_servers.http_tool_server import closed_port


@dataclass
class RedisServer:
    """A redis-server without persistence: a restart comes back empty, as after a crash."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: ASYNC220 - returns at once; readiness polled below
            [
                "/usr/bin/redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        try:
            for _ in range(200):
                if await answers(client):
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"redis-server on port {self.port} did not start")
        finally:
            await client.aclose()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


async def answers(client: redis.Redis) -> bool:
    """Whether the server answers a PING now."""
    try:
        return bool(await client.ping())
    except (redis.RedisError, OSError):
        return False


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A redis-server on a free port, stopped after the test."""
    server = RedisServer(tmp_path, closed_port())
    await server.start()
    try:
        yield server
    finally:
        server.stop()
