"""`shell.exec` against real processes: allow-list, output capture, exit codes, timeouts."""

from __future__ import annotations

import asyncio
import dataclasses
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest

from projections.registry import inline_projections
from services.timer.service import Timer
from tests.workers import (
    AUTH,
    FAST,
    api_client,
    create_task,
    eventually,
    get_run,
    run_now,
    run_to_end,
    running_workers,
)


def script(directory: Path, name: str, body: str) -> str:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    directory = tmp_path / "jobs"
    directory.mkdir()
    return directory


@pytest.fixture
def allow(jobs: Path) -> tuple[str, ...]:
    return (f"{jobs}/*.sh", "/usr/bin/env", "env")


@pytest.fixture
async def client(
    database_url: str, redis_url: str, allow: tuple[str, ...]
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(database_url, redis_url, shell_allow=allow) as test_client:
        yield test_client


def workers(database_url: str, redis_url: str, allow: tuple[str, ...]) -> Any:
    config = dataclasses.replace(FAST, shell_allow=allow)
    return running_workers(database_url, redis_url, config=config)


def step(**options: Any) -> dict[str, Any]:
    return {"id": "job", "uses": "shell.exec", **options}


async def test_an_allowed_script_on_a_per_second_cron_records_its_output(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    pool: asyncpg.Pool,
    jobs: Path,
    allow: tuple[str, ...],
) -> None:
    path = script(jobs, "report.sh", 'echo "rows: $1"\necho "warning: slow" >&2')
    body = {
        "title": "every second",
        "schedule_kind": "cron",
        "schedule_expr": "* * * * * *",
        "payload": {"pipeline": [step(**{"with": {"argv": [path, "42"]}})]},
    }
    response = await client.post("/tasks", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    task_id = response.json()["id"]
    stop = asyncio.Event()
    timer = asyncio.create_task(Timer(pool, inline_projections()).run(stop))
    try:
        async with workers(database_url, redis_url, allow):

            async def finished_run() -> str | None:
                return await pool.fetchval(  # type: ignore[no-any-return]
                    "SELECT run_id FROM runs WHERE task_id = $1 AND status = 'succeeded' LIMIT 1",
                    task_id,
                )

            run_id = await eventually(finished_run, within=20)
    finally:
        stop.set()
        await timer
    run = await get_run(client, run_id)
    assert run["trigger"] == "schedule"
    (job,) = run["steps"]
    assert job["output"] == {
        "exit_code": 0,
        "stdout": "rows: 42\n",
        "stderr": "warning: slow\n",
        "stdout_truncated": False,
        "stderr_truncated": False,
    }


async def test_a_program_not_on_the_allow_list_is_refused_at_task_creation(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    for options, field in [
        ({"argv": ["/bin/rm", "-rf", "/tmp/x"]}, "payload.pipeline[0].with.argv[0]"),
        ({"argv": ["./report.sh"]}, "payload.pipeline[0].with.argv[0]"),
        ({"command": "rm -rf /", "shell": True}, "payload.pipeline[0].with.shell"),
        ({"command": "env"}, "payload.pipeline[0].with.argv"),
    ]:
        body = {
            "title": "t",
            "schedule_kind": "cron",
            "schedule_expr": "0 0 1 1 *",
            "payload": {"pipeline": [step(**{"with": options})]},
        }
        response = await client.post("/tasks", json=body, headers=AUTH)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == field
        assert any(w in response.text for w in ("ORDINAUT_SHELL_ALLOW", "relative", "shell: true"))
    assert await pool.fetchval("SELECT count(*) FROM events") == 0


async def test_a_program_known_only_at_run_time_is_checked_by_the_worker(
    client: httpx.AsyncClient, database_url: str, redis_url: str, allow: tuple[str, ...]
) -> None:
    pipeline = [step(**{"with": {"argv": ["${params.program}", "-rf", "/tmp/nothing"]}})]
    payload = {"pipeline": pipeline, "params": {"program": "/bin/rm"}}
    task = await create_task(client, [], payload=payload, max_retries=0)
    async with workers(database_url, redis_url, allow):
        run = await run_to_end(client, await run_now(client, task["id"]))
    assert run["status"] == "dead"
    assert "'/bin/rm' is not allowed" in run["steps"][0]["error"]


async def test_a_failing_program_fails_the_step_with_its_exit_code_and_stderr_tail(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    jobs: Path,
    allow: tuple[str, ...],
) -> None:
    path = script(jobs, "fail.sh", 'echo "starting"\necho "disk full on /data" >&2\nexit 3')
    task = await create_task(client, [step(**{"with": {"argv": [path]}})], max_retries=0)
    async with workers(database_url, redis_url, allow):
        run = await run_to_end(client, await run_now(client, task["id"]))
    assert run["status"] == "dead"
    error = run["steps"][0]["error"]
    assert "exit code 3" in error
    assert "disk full on /data" in error


async def test_only_listed_environment_reaches_the_program_and_output_is_truncated(
    client: httpx.AsyncClient, database_url: str, redis_url: str, allow: tuple[str, ...]
) -> None:
    options = {
        "argv": ["env"],
        "env": {"GREETING": "hello", "PADDING": "x" * 100},
        "max_output_bytes": 40,
    }
    task = await create_task(client, [step(**{"with": options})], max_retries=0)
    async with workers(database_url, redis_url, allow):
        run = await run_to_end(client, await run_now(client, task["id"]))
    assert run["status"] == "succeeded", run
    output = run["steps"][0]["output"]
    assert output["stdout_truncated"] is True
    assert "bytes truncated]" in output["stdout"]
    kept = output["stdout"].split("\n", 1)[1]
    assert len(kept.encode()) <= 40
    assert "HOME=" not in output["stdout"]
    assert "PATH=" not in output["stdout"]

    options = {"argv": ["env"], "env": {"GREETING": "hello"}}
    task = await create_task(client, [step(**{"with": options})], max_retries=0)
    async with workers(database_url, redis_url, allow):
        run = await run_to_end(client, await run_now(client, task["id"]))
    assert run["steps"][0]["output"]["stdout"] == "GREETING=hello\n"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_a_hanging_program_is_killed_at_its_timeout_with_its_children(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    jobs: Path,
    allow: tuple[str, ...],
) -> None:
    pids = jobs / "pids"
    path = script(jobs, "hang.sh", f'sleep 300 &\necho "$$ $!" > {pids}\nwait')
    task = await create_task(
        client, [step(**{"with": {"argv": [path]}, "timeout_seconds": 1})], max_retries=0
    )
    async with workers(database_url, redis_url, allow):
        run = await run_to_end(client, await run_now(client, task["id"]))
    assert run["status"] == "dead"
    assert "timed out after 1 s" in run["steps"][0]["error"]
    shell_pid, sleep_pid = (int(p) for p in pids.read_text().split())

    async def both_gone() -> bool:
        return not _alive(shell_pid) and not _alive(sleep_pid)

    assert await eventually(both_gone, within=5)


async def test_agents_need_the_shell_scope(client: httpx.AsyncClient) -> None:
    pipeline = [step(**{"with": {"argv": ["env"]}})]
    body = {
        "title": "t",
        "schedule_kind": "cron",
        "schedule_expr": "0 0 1 1 *",
        "payload": {"pipeline": pipeline},
    }
    for name, scopes, status in [
        ("plain", ["tasks:write"], 403),
        ("ops", ["tasks:write", "shell"], 201),
    ]:
        created = await client.post("/agents", json={"name": name, "scopes": scopes}, headers=AUTH)
        agent_id = created.json()["id"]
        token = (await client.post(f"/agents/{agent_id}/tokens", json={}, headers=AUTH)).json()
        headers = {"Authorization": f"Bearer {token['token']}"}
        response = await client.post("/tasks", json=body, headers=headers)
        assert response.status_code == status, response.text
        if status == 403:
            assert "needs scope 'shell'" in response.text


async def test_canceling_the_run_kills_the_program_and_its_children(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    jobs: Path,
    allow: tuple[str, ...],
) -> None:
    pids = jobs / "pids"
    path = script(jobs, "long.sh", f'sleep 300 &\necho "$$ $!" > {pids}\nwait')
    task = await create_task(client, [step(**{"with": {"argv": [path]}})], max_retries=0)
    async with workers(database_url, redis_url, allow):
        run_id = await run_now(client, task["id"])
        await eventually(lambda: asyncio.to_thread(pids.exists))
        canceled = await client.post(f"/runs/{run_id}/cancel", headers=AUTH)
        assert canceled.status_code == 200, canceled.text
        run = await run_to_end(client, run_id)
    assert run["status"] == "canceled"
    shell_pid, sleep_pid = (int(p) for p in pids.read_text().split())

    async def both_gone() -> bool:
        return not _alive(shell_pid) and not _alive(sleep_pid)

    assert await eventually(both_gone, within=5)
