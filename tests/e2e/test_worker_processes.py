"""`ordinaut worker` as a real process: killed mid-run (another worker finishes the run without
repeating finished steps), and stopped with SIGTERM (it finishes what it holds and exits 0)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.tools_servers.step_tool import StepTool, serving
from tests.workers import (
    api_client,
    create_task,
    eventually,
    get_run,
    of_type,
    register_tool,
    run_events,
    run_now,
    run_to_end,
    running_workers,
)

REPO = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 2


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(database_url, redis_url) as test_client:
        yield test_client


@pytest.fixture
def tool() -> Iterator[tuple[StepTool, str]]:
    step_tool = StepTool()
    with serving(step_tool) as base_url:
        yield step_tool, base_url


@pytest.fixture
def worker_process(
    database_url: str, redis_url: str, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`ordinaut worker` on the test's database and Redis, with short leases; its output is
    in ``tmp_path / "worker.log"``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
    env |= {
        "ORDINAUT_DATABASE_URL": database_url,
        "ORDINAUT_REDIS_URL": redis_url,
        "ORDINAUT_DATA_DIR": str(tmp_path / "data"),
        "ORDINAUT_WORKER_LEASE_SECONDS": str(LEASE_SECONDS),
        "ORDINAUT_WORKER_POLL_SECONDS": "0.2",
        "ORDINAUT_WORKER_CONCURRENCY": "4",
        "ORDINAUT_LOG_FORMAT": "json",
    }
    with (tmp_path / "worker.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "worker"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def _pipeline(client: httpx.AsyncClient, base_url: str, gate: str) -> str:
    """A task of three steps whose middle one waits at ``gate``; its id."""
    await register_tool(client, "test.ok", f"{base_url}/ok")
    await register_tool(client, "test.wait", f"{base_url}/gate/{gate}")
    steps: list[dict[str, Any]] = [
        {"id": "first", "uses": "test.ok"},
        {"id": "second", "uses": "test.wait", "with": {"from": "${steps.first.key}"}},
        {"id": "third", "uses": "test.ok"},
    ]
    return str((await create_task(client, steps))["id"])


async def test_a_killed_workers_run_is_finished_by_another_without_repeating_steps(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    pool: asyncpg.Pool,
    tool: tuple[StepTool, str],
    worker_process: subprocess.Popen[bytes],
) -> None:
    server, base_url = tool
    run_id = await run_now(client, await _pipeline(client, base_url, "crash"))
    await server.wait_entered("crash")
    running = await get_run(client, run_id)
    assert running["status"] == "running"
    assert f"-{worker_process.pid}-" in running["worker"]
    assert [step["id"] for step in running["steps"]] == ["first"]

    worker_process.send_signal(signal.SIGKILL)
    assert worker_process.wait(10) == -signal.SIGKILL
    held_until = await pool.fetchval("SELECT locked_until FROM due_work WHERE run_id = $1", run_id)
    server.gate("crash").opened.set()
    async with running_workers(database_url, redis_url):
        run = await run_to_end(client, run_id, within=LEASE_SECONDS + 15)

    assert run["status"] == "succeeded", run
    assert server.per_key() == {
        f"{run_id}:first": 1,
        f"{run_id}:second": 2,  # in flight when killed: called again, with the same key
        f"{run_id}:third": 1,
    }
    events = await run_events(pool, run_id)
    first, second = of_type(events, "run.started")
    assert (first["resumed"], second.get("resumed", False)) == (False, True)
    assert first["worker"] != second["worker"] == run["worker"]
    assert second["at"] >= held_until, "the run was taken over before its lease lapsed"
    succeeded = [e["step_id"] for e in of_type(events, "run.step_succeeded")]
    assert succeeded == ["first", "second", "third"]
    assert len(of_type(events, "run.succeeded")) == 1
    assert await pool.fetchval("SELECT count(*) FROM due_work") == 0


async def test_sigterm_lets_the_worker_finish_its_run_and_exit_0(
    client: httpx.AsyncClient,
    database_url: str,
    pool: asyncpg.Pool,
    tool: tuple[StepTool, str],
    worker_process: subprocess.Popen[bytes],
    tmp_path: Path,
) -> None:
    server, base_url = tool
    task_id = await _pipeline(client, base_url, "drain")
    run_id = await run_now(client, task_id)
    await server.wait_entered("drain")

    worker_process.send_signal(signal.SIGTERM)
    log = tmp_path / "worker.log"
    await eventually(lambda: _contains(log, "draining"))
    later = await run_now(client, task_id)  # the draining worker must not take new work
    commits = await _commits(pool)
    await asyncio.sleep(1.0)
    during_drain = await _commits(pool) - commits
    server.gate("drain").opened.set()
    code = await asyncio.to_thread(worker_process.wait, 30)

    assert code == 0, log.read_text()
    run = await get_run(client, run_id)
    assert run["status"] == "succeeded", run
    assert f"-{worker_process.pid}-" in run["worker"]
    assert server.per_key() == {f"{run_id}:{step}": 1 for step in ("first", "second", "third")}
    assert (await get_run(client, later))["status"] == "queued"
    # Draining holds one lease: heartbeats every few seconds, not a busy loop of them.
    assert during_drain < 50, f"{during_drain} transactions in 1 s of draining"


async def _contains(path: Path, text: str) -> bool:
    return text in await asyncio.to_thread(path.read_text, errors="replace")


async def _commits(pool: asyncpg.Pool) -> int:
    """Transactions committed in this database so far (as the statistics report them)."""
    return int(
        await pool.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
    )
