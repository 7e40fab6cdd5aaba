"""The README's Redis examples, taken from README.md itself, run verbatim against the embedded
default (`ordinaut up` in the current directory, ./.ordinaut), so they cannot drift."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as redis

from services.runtime.runtime_file import read_runtime
from tests.workers import eventually

README = Path(__file__).resolve().parents[2] / "README.md"
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(language: str, containing: str) -> list[str]:
    """The README's fenced blocks of ``language`` that mention ``containing``."""
    return [
        body
        for lang, body in _BLOCK.findall(README.read_text())
        if lang == language and containing in body
    ]


def test_the_readme_has_redis_examples_and_none_assumes_a_fixed_address() -> None:
    shell = blocks("sh", "redis-cli")
    assert len(shell) >= 2  # ingest, ACL users
    for block in shell:
        assert "6379" not in block
        for command in re.findall(r"redis-cli[^\n]*", block):
            assert command.startswith('redis-cli -u "$ORDINAUT_REDIS_URL"'), command
    (faststream,) = blocks("python", "RedisBroker(")
    assert 'RedisBroker(os.environ["ORDINAUT_REDIS_URL"])' in faststream


@pytest.mark.timeout(240)
async def test_the_readme_redis_examples_work_verbatim(tmp_path: Path, start_service: Any) -> None:
    work = tmp_path / "work"
    service = start_service(work / ".ordinaut")  # the default data dir of a shell in `work`
    await service.wait_ready()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    for block in blocks("sh", "redis-cli"):
        result = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=work,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{block}\n{result.stdout}\n{result.stderr}"
        assert "ERR" not in result.stdout, result.stdout  # redis-cli exits 0 on a refusal
        assert "NOAUTH" not in result.stdout, result.stdout

    runtime = read_runtime(work / ".ordinaut")
    assert runtime is not None
    conn = await asyncpg.connect(runtime.database_url)
    try:
        ingested = "SELECT data FROM events WHERE type = 'event.received' AND stream = $1"

        async def recorded() -> list[asyncpg.Record]:
            return await conn.fetch(ingested, "topic-order.placed")

        (row,) = await eventually(recorded, within=30)
    finally:
        await conn.close()
    assert '"source": "shop"' in row["data"]
    async with redis.Redis.from_url(runtime.redis_url) as live:
        users = await live.acl_users()
    assert {b"ingest-producer", b"events-reader"} <= {
        u.encode() if isinstance(u, str) else u for u in users
    }
    assert service.stop() == 0
