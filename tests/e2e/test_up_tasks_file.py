"""`ordinaut up --tasks-file`: the file is applied at start and on every save, and its shell
task runs on a per-second cron in the real service."""

from __future__ import annotations

import asyncio
import functools
import stat
from pathlib import Path
from typing import Any

import psutil
import pytest

TASKS = """\
source: e2e
tasks:
  - key: tick
    title: Every second
    schedule_kind: cron
    schedule_expr: "* * * * * *"
    max_retries: 0
    payload:
      pipeline:
        - id: job
          uses: shell.exec
          with: {argv: [JOB, e2e], env: {LANG: C}}
"""


def write(path: Path, text: str) -> None:
    path.write_text(text)


async def poll(check: Any, within: float = 20) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.2)
    raise AssertionError("condition not met in time")


@pytest.mark.timeout(120)
async def test_up_applies_the_tasks_file_and_runs_its_shell_task(
    tmp_path: Path, start_service: Any, database_url: str, redis_url: str
) -> None:
    job = tmp_path / "job.sh"
    write(job, '#!/bin/sh\necho "hello $1"\necho "lang=$LANG" >&2\n')
    job.chmod(job.stat().st_mode | stat.S_IXUSR)
    tasks = tmp_path / "tasks.yaml"
    write(tasks, TASKS.replace("JOB", str(job)))
    env = {
        "ORDINAUT_DATABASE_URL": database_url,
        "ORDINAUT_REDIS_URL": redis_url,
        "ORDINAUT_SHELL_ALLOW": f"{tmp_path}/*.sh",
    }
    service = start_service(tmp_path / "data", env, ["--tasks-file", str(tasks)])
    await service.wait_ready()
    async with service.client() as client:

        async def succeeded_run() -> dict[str, Any] | None:
            page = (await client.get("/runs", params={"status": "succeeded"})).json()
            if not page["items"]:
                return None
            return (await client.get(f"/runs/{page['items'][0]['id']}")).json()  # type: ignore[no-any-return]

        run = await poll(succeeded_run)
        output = run["steps"][0]["output"]
        assert (output["exit_code"], output["stdout"], output["stderr"]) == (
            0,
            "hello e2e\n",
            "lang=C\n",
        )

        write(tasks, "source: e2e\ntasks: []\n")  # the file owns its tasks: tick is pruned

        async def canceled() -> bool:
            (task,) = (await client.get("/tasks", params={"key": "tick"})).json()["items"]
            return bool(task["status"] == "canceled")

        await poll(canceled, within=10)
    assert service.stop() == 0
    assert "- tick: prune" in service.output


BAD_SAVES = [
    ("a: &a [*a]\n", "tasks.yaml:1: alias *a refers to itself"),
    ("source: e2e\na: &a {b: *a}\ntasks: []\n", "tasks.yaml:2: alias *a refers to itself"),
    (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{level}: &{level} [{', '.join([f'*{chr(ord(level) - 1)}'] * 10)}]\n"
            for level in "bcdefghi"
        ),
        "tasks.yaml: expands to more than 200000 values",
    ),
    ("tasks: " + "[" * 5000 + "]" * 5000 + "\n", "tasks.yaml: nests too deeply"),
    (  # msgspec cannot store a boolean key: this used to stop the whole service
        "tasks:\n  - {key: k, title: K, schedule_kind: event, schedule_expr: x,"
        " payload: {params: {true: b}}}\n",
        "tasks.yaml:2: tasks[0].payload.params: key 'true' is a boolean in YAML",
    ),
]


@pytest.mark.timeout(120)
async def test_saves_that_loop_explode_nest_too_deep_or_hold_a_boolean_key_leave_up_running(
    tmp_path: Path, start_service: Any, database_url: str, redis_url: str
) -> None:
    tasks = tmp_path / "tasks.yaml"
    good = (
        "source: e2e\ntasks:\n"
        "  - {key: deploys, title: D, schedule_kind: event, schedule_expr: deploy.*}\n"
    )
    write(tasks, good)
    env = {"ORDINAUT_DATABASE_URL": database_url, "ORDINAUT_REDIS_URL": redis_url}
    service = start_service(tmp_path / "data", env, ["--tasks-file", str(tasks)])
    await service.wait_ready()

    async def printed(text: str, times: int = 1) -> bool:
        return service.output.count(text) >= times

    await poll(functools.partial(printed, "1 created"))
    process = psutil.Process(service.process.pid)
    before = process.memory_info().rss
    for count, (text, refusal) in enumerate(BAD_SAVES, start=1):
        write(tasks, text)
        await poll(functools.partial(printed, "tasks.yaml: nothing was applied", count), 10)
        assert refusal in service.output
    assert process.memory_info().rss - before < 200 * 1024 * 1024
    assert "Traceback" not in service.output

    write(tasks, good.replace("title: D", "title: Deploys"))
    async with service.client() as client:
        assert (await client.get("/health/ready")).status_code == 200

        async def renamed() -> bool:
            (task,) = (await client.get("/tasks", params={"key": "deploys"})).json()["items"]
            return bool(task["definition"]["title"] == "Deploys")

        await poll(renamed, within=10)
    assert service.stop() == 0
