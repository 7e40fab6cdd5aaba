"""`ordinaut apply`: tasks files create, update only what changed, prune, dry-run and watch."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from services.api.app import ApiConfig, create_app
from services.declarative.apply import ApplyOptions
from services.declarative.file_format import tasks_file_schema
from services.declarative.runner import FileApplier
from services.runtime.admin_token import token_hash
from tests.workers import AUTH, api_client

TASKS = """\
source: team-jobs
tasks:
  - key: standup
    title: Standup reminder
    schedule_kind: cron
    schedule_expr: "30 8 * * 1-5"
    timezone: Europe/Chisinau
    payload:
      pipeline:
        - {id: hello, uses: debug.echo, with: {text: "standup"}}
  - key: weekly
    title: Weekly report
    schedule_kind: rrule
    schedule_expr: FREQ=WEEKLY;BYDAY=FR;BYHOUR=16
    priority: 3
  - key: on-deploy
    title: After each deploy
    schedule_kind: event
    schedule_expr: deploy.*
"""


def cli(
    *args: str, env: dict[str, str], max_memory_kib: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI; with ``max_memory_kib``, in at most that much address space (`ulimit -v`),
    so a command that would eat memory fails fast instead of slowing the machine down."""
    command = [sys.executable, "-m", "services.cli.main", *args]
    if max_memory_kib is not None:
        command = ["sh", "-c", f'ulimit -v {max_memory_kib} && exec "$@"', "sh", *command]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
    return subprocess.run(
        command,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return {"ORDINAUT_DATABASE_URL": database_url, "ORDINAUT_LOG_FORMAT": "json"}


@pytest.fixture
def tasks_file(tmp_path: Path) -> Path:
    path = tmp_path / "tasks.yaml"
    write(path, TASKS)
    return path


async def events(pool: asyncpg.Pool, kind: str | None = None) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT type, stream, data::text AS data FROM events"
        " WHERE $1::text IS NULL OR type = $1 ORDER BY position",
        kind,
    )
    return [{"type": r["type"], "stream": r["stream"], **json.loads(r["data"])} for r in rows]


async def tasks_by_key(pool: asyncpg.Pool) -> dict[str, asyncpg.Record]:
    rows = await pool.fetch("SELECT * FROM task WHERE NOT deleted")
    return {row["key"]: row for row in rows}


def write(path: Path, text: str) -> None:
    path.write_text(text)


def apply(env: dict[str, str], path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    result = cli("apply", "-f", str(path), *flags, env=env)
    assert "Traceback" not in result.stderr, result.stderr
    return result


async def test_one_changed_field_makes_exactly_one_update(
    env: dict[str, str], tasks_file: Path, pool: asyncpg.Pool
) -> None:
    first = apply(env, tasks_file)
    assert first.returncode == 0, first.stderr
    assert "3 created, 0 updated, 0 unchanged, 0 pruned" in first.stdout
    before = await tasks_by_key(pool)
    assert {k: r["created_by"] for k, r in before.items()} == dict.fromkeys(before, "admin")
    assert json.loads(before["weekly"]["definition"])["metadata"] == {"source": "team-jobs"}

    again = apply(env, tasks_file)
    assert "0 created, 0 updated, 3 unchanged" in again.stdout, again.stdout
    assert len(await events(pool)) == 3

    write(tasks_file, TASKS.replace("priority: 3", "priority: 2"))
    changed = apply(env, tasks_file)
    assert "0 created, 1 updated, 2 unchanged" in changed.stdout, changed.stdout
    assert "priority: 3 -> 2" in changed.stdout
    (updated,) = await events(pool, "task.updated")
    assert updated["task_id"] == before["weekly"]["id"]
    assert updated["changed"] == ["priority"]
    after = await tasks_by_key(pool)
    assert after["weekly"]["priority"] == 2
    # the rrule kept the anchor it was given at creation; the others were not touched
    assert after["weekly"]["definition"] == before["weekly"]["definition"].replace(
        '"priority": 3', '"priority": 2'
    )
    for key in ("standup", "on-deploy"):
        assert after[key]["version"] == before[key]["version"]


async def test_prune_cancels_only_tasks_of_this_source_that_left_the_file(
    env: dict[str, str], tasks_file: Path, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    apply(env, tasks_file)
    other = tmp_path / "other.yaml"  # no source: line, so its source is its file name
    write(
        other,
        "tasks:\n  - {key: backup, title: B, schedule_kind: cron, schedule_expr: '0 3 * * *'}\n",
    )
    assert apply(env, other).returncode == 0
    assert json.loads((await tasks_by_key(pool))["backup"]["definition"])["metadata"] == {
        "source": "other.yaml"
    }

    without_weekly = TASKS.split("  - key: weekly")[0] + TASKS.split("priority: 3\n")[1]
    write(tasks_file, without_weekly)
    kept = apply(env, tasks_file)
    assert "0 pruned" in kept.stdout
    assert (await tasks_by_key(pool))["weekly"]["status"] == "active"

    pruned = apply(env, tasks_file, "--prune")
    assert pruned.returncode == 0, pruned.stderr
    assert "- weekly: prune" in pruned.stdout
    statuses = {k: r["status"] for k, r in (await tasks_by_key(pool)).items()}
    assert statuses == {
        "standup": "active",
        "on-deploy": "active",
        "weekly": "canceled",
        "backup": "active",
    }
    assert len(await events(pool, "task.canceled")) == 1

    write(tasks_file, TASKS)  # back in the file: a new task takes the key
    revived = apply(env, tasks_file, "--prune")
    assert "+ weekly: create (replaces finished task" in revived.stdout, revived.stdout
    assert (await tasks_by_key(pool))["weekly"]["status"] == "active"


async def test_dry_run_prints_the_diff_and_writes_nothing(
    env: dict[str, str], tasks_file: Path, pool: asyncpg.Pool
) -> None:
    apply(env, tasks_file)
    count = len(await events(pool))
    changed = TASKS.replace("priority: 3", "priority: 2").replace(
        "  - key: on-deploy",
        "  - {key: new, title: N, schedule_kind: once, "
        "schedule_expr: '2099-01-01T00:00:00Z'}\n  - key: on-deploy",
    )
    write(tasks_file, changed.replace("  - key: standup", "  - key: standup-renamed"))
    result = apply(env, tasks_file, "--dry-run", "--prune")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "  + standup-renamed: create" in lines
    assert "  ~ weekly: update" in lines
    assert "      priority: 3 -> 2" in lines
    assert "  + new: create" in lines
    assert "  = on-deploy: unchanged" in lines
    assert "  - standup: prune" in lines
    assert lines[-1] == "2 created, 1 updated, 1 unchanged, 1 pruned (dry run: nothing was written)"
    assert len(await events(pool)) == count


async def test_an_invalid_file_names_line_and_field_and_applies_nothing(
    env: dict[str, str], tasks_file: Path, pool: asyncpg.Pool
) -> None:
    broken = TASKS.replace("uses: debug.echo", "uses: nowhere.tool")
    write(
        tasks_file,
        broken + "  - {key: late, title: L, schedule_kind: cron, "
        "schedule_expr: '0 8 * * *', priority: 12}\n",
    )
    result = apply(env, tasks_file)
    assert result.returncode == 1
    assert "tasks.yaml:20: tasks[3].priority: 12 is greater than the maximum of 9" in result.stderr
    assert "nothing was applied" in result.stderr
    # with the schema satisfied, rules of POST /tasks apply to every task before any write
    write(tasks_file, broken)
    result = apply(env, tasks_file)
    assert result.returncode == 1
    assert (
        "tasks.yaml:10: tasks[0].payload.pipeline[0].uses: unknown tool 'nowhere.tool'"
        in result.stderr
    ), result.stderr
    write(
        tasks_file,
        TASKS + "  - {key: weekly, title: again, schedule_kind: event, schedule_expr: x}\n",
    )
    result = apply(env, tasks_file)
    assert (
        "tasks.yaml:20: tasks[3].key: duplicate key 'weekly' (first at tasks[1])" in result.stderr
    )
    write(tasks_file, "tasks:\n  - key: a\n    title: [unclosed\n")
    result = apply(env, tasks_file)
    assert result.returncode == 1
    assert "tasks.yaml:4: not valid YAML" in result.stderr, result.stderr
    assert await events(pool) == []


async def test_an_instant_beyond_the_calendar_is_refused_naming_the_field(
    env: dict[str, str], tasks_file: Path, pool: asyncpg.Pool
) -> None:
    extreme = "9999-12-31T23:59:59-12:00"
    write(
        tasks_file,
        f"tasks:\n  - {{key: last, title: L, schedule_kind: once, schedule_expr: '{extreme}'}}\n",
    )
    result = apply(env, tasks_file)  # no traceback: a rule refused it
    assert result.returncode == 1
    reason = "is outside the supported range (0001-01-02T00:00:00Z to before 9999-12-31T00:00:00Z)"
    assert f"tasks[0].schedule_expr: {extreme} {reason}" in result.stderr, result.stderr
    assert await events(pool) == []


def billion_laughs() -> str:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in "bcdefghi":  # 10**9 values once expanded
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 10) + "]")
    return "\n".join(lines) + "\ntasks: []\n"


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("a: &a [*a]\n", "r.yaml:1: alias *a refers to itself: it is inside the value &a names"),
        (
            "a: &a {b: *a}\ntasks: []\n",
            "r.yaml:1: alias *a refers to itself: it is inside the value &a names",
        ),
        (billion_laughs(), "r.yaml: expands to more than 200000 values (check its YAML aliases)"),
    ],
    ids=["list-in-itself", "mapping-in-itself", "billion-laughs"],
)
async def test_alias_loops_and_bombs_are_refused_at_once_in_little_memory(
    env: dict[str, str], tmp_path: Path, pool: asyncpg.Pool, text: str, refusal: str
) -> None:
    path = tmp_path / "r.yaml"
    write(path, text)
    started = time.monotonic()
    result = cli("apply", "-f", str(path), "--dry-run", env=env, max_memory_kib=2 << 20)
    assert time.monotonic() - started < 20
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1
    assert result.stderr.splitlines() == [refusal, "r.yaml: nothing was applied"]
    assert await events(pool) == []


def one_task(params: str) -> str:
    return (
        "tasks:\n  - key: k3\n    title: K\n    schedule_kind: event\n    schedule_expr: x\n"
        f"    payload: {{params: {params}}}\n"
    )


async def test_keys_and_numbers_the_api_refuses_are_refused_with_their_line(
    env: dict[str, str], tmp_path: Path, pool: asyncpg.Pool
) -> None:
    path = tmp_path / "tasks.yaml"
    where = "tasks.yaml:6: tasks[0].payload.params"
    for params, refusal in [
        ("{true: b}", f"{where}: key 'true' is a boolean in YAML, not a string: quote it"),
        ("{null: c}", f"{where}: key 'null' is null in YAML, not a string: quote it"),
        ("{1: a}", f"{where}: key '1' is a number in YAML, not a string: quote it"),
        ("{x: .nan}", f"{where}.x: NaN is not a JSON number"),
        ("{x: [.inf]}", f"{where}.x[0]: infinity is not a JSON number"),
    ]:
        write(path, one_task(params))
        result = apply(env, path, "--dry-run")  # a traceback fails here
        assert result.returncode == 1
        assert result.stderr.startswith(refusal), result.stderr
    as_json = tmp_path / "tasks.json"
    for number in ("NaN", "1e999", "-Infinity"):
        body = {
            "tasks": [
                {
                    "key": "j",
                    "title": "J",
                    "schedule_kind": "event",
                    "schedule_expr": "x",
                    "payload": {"params": {"n": "N"}},
                }
            ]
        }
        write(as_json, json.dumps(body).replace('"N"', number))
        result = apply(env, as_json)
        assert result.returncode == 1
        assert result.stderr.startswith("tasks.json:1: tasks[0].payload.params.n: ")
    assert await events(pool) == []

    write(path, one_task("{'1': a, x: 1.5}"))  # what the API takes: applied once, then unchanged
    assert "1 created" in apply(env, path).stdout
    again = apply(env, path)
    assert "0 created, 0 updated, 1 unchanged" in again.stdout, again.stdout
    assert [e["type"] for e in await events(pool)] == ["task.created"]


async def test_numbers_are_compared_as_the_store_gives_them_back(
    env: dict[str, str], tmp_path: Path, pool: asyncpg.Pool
) -> None:
    path = tmp_path / "tasks.yaml"
    # PostgreSQL gives 1e23 back as 100000000000000000000000: no update on every apply
    write(path, one_task("{big: 1.0e+23, zero: -0.0, flag: true}"))
    assert "1 created" in apply(env, path).stdout
    assert "1 unchanged" in apply(env, path).stdout
    write(path, one_task("{big: 1.0e+23, zero: -0.0, flag: 1}"))  # Python: 1 == True
    changed = apply(env, path)
    assert "1 updated" in changed.stdout, changed.stdout
    stored = await pool.fetchval("SELECT definition -> 'payload' ->> 'params' FROM task")
    assert stored == '{"big": 100000000000000000000000, "flag": 1, "zero": 0.0}'
    assert [e["type"] for e in await events(pool)] == ["task.created", "task.updated"]


async def test_json_files_and_missing_files(
    env: dict[str, str], tmp_path: Path, pool: asyncpg.Pool
) -> None:
    path = tmp_path / "tasks.json"
    body = {
        "tasks": [
            {
                "key": "j",
                "title": "J",
                "schedule_kind": "cron",
                "schedule_expr": "0 9 * * *",
                "priority": 0,
            }
        ]
    }
    write(path, json.dumps(body, indent="\t"))
    result = apply(env, path)
    assert result.returncode == 1
    assert "tasks.json:8: tasks[0].priority: 0 is less than the minimum of 1" in result.stderr
    body["tasks"][0]["priority"] = 1
    write(path, json.dumps(body, indent=2))
    assert apply(env, path).returncode == 0
    assert (await tasks_by_key(pool))["j"]["priority"] == 1
    missing = apply(env, tmp_path / "nope.yaml")
    assert missing.returncode == 2
    assert "no such file" in missing.stderr


async def watcher(env: dict[str, str], path: Path) -> asyncio.subprocess.Process:
    """`ordinaut apply -f path --watch`, in at most 2 GiB of address space."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
    command = [sys.executable, "-m", "services.cli.main", "apply", "-f", str(path), "--watch"]
    return await asyncio.create_subprocess_exec(
        *["sh", "-c", f'ulimit -v {2 << 20} && exec "$@"', "sh", *command],
        env={**environment, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def line_containing(stream: asyncio.StreamReader | None, text: str) -> str:
    assert stream is not None
    while True:
        line = (await asyncio.wait_for(stream.readline(), 30)).decode()
        assert line, "the watcher stopped"
        if text in line:
            return line


async def test_watch_applies_each_save_and_ignores_invalid_ones(
    env: dict[str, str], tasks_file: Path, pool: asyncpg.Pool
) -> None:
    process = await watcher(env, tasks_file)
    try:
        await line_containing(process.stdout, "3 created")
        write(tasks_file, TASKS.replace("priority: 3", "priority: 2"))
        await asyncio.wait_for(line_containing(process.stdout, "1 updated"), 5)
        assert (await tasks_by_key(pool))["weekly"]["priority"] == 2

        write(tasks_file, TASKS.replace("priority: 3", "priority: eleven"))
        problem = await asyncio.wait_for(line_containing(process.stderr, "tasks.yaml:"), 5)
        assert "tasks[1].priority" in problem
        await line_containing(process.stderr, "nothing was applied")
        assert (await tasks_by_key(pool))["weekly"]["priority"] == 2  # the last good version

        write(tasks_file, TASKS.replace("priority: 3", "priority: 4"))
        await asyncio.wait_for(line_containing(process.stdout, "1 updated"), 5)
        assert (await tasks_by_key(pool))["weekly"]["priority"] == 4
    finally:
        process.terminate()
        await process.wait()
    assert process.returncode == 0
    assert len(await events(pool, "task.updated")) == 2


async def test_watch_outlives_saves_that_loop_explode_or_nest_too_deep(
    env: dict[str, str], tasks_file: Path, pool: asyncpg.Pool
) -> None:
    process = await watcher(env, tasks_file)
    try:
        await line_containing(process.stdout, "3 created")
        for text, refusal in [
            ("a: &a [*a]\n", "tasks.yaml:1: alias *a refers to itself"),
            ("a: &a {b: *a}\ntasks: []\n", "tasks.yaml:1: alias *a refers to itself"),
            (billion_laughs(), "tasks.yaml: expands to more than 200000 values"),
            ("tasks: " + "[" * 5000 + "]" * 5000 + "\n", "tasks.yaml: nests too deeply"),
        ]:
            write(tasks_file, text)
            assert (await line_containing(process.stderr, "tasks.yaml")).startswith(refusal)
            await line_containing(process.stderr, "nothing was applied")
        write(tasks_file, TASKS.replace("priority: 3", "priority: 4"))
        await asyncio.wait_for(line_containing(process.stdout, "1 updated"), 5)
    finally:
        process.terminate()
        await process.wait()
    assert process.returncode == 0
    assert (await tasks_by_key(pool))["weekly"]["priority"] == 4


async def test_tools_in_the_file_and_allow_lists_from_the_settings(
    env: dict[str, str], tmp_path: Path, pool: asyncpg.Pool
) -> None:
    path = tmp_path / "ops.yaml"
    write(
        path,
        textwrap.dedent("""\
        tools:
          - address: calc.add
            transport: python
            callable: "tests.tools_servers.python_tools:add"
        tasks:
          - key: sum
            title: Sum
            schedule_kind: cron
            schedule_expr: "0 * * * *"
            payload:
              pipeline:
                - {id: add, uses: calc.add, with: {a: 1, b: 2}}
          - key: backup
            title: Backup
            schedule_kind: cron
            schedule_expr: "0 3 * * *"
            payload:
              pipeline:
                - id: dump
                  uses: shell.exec
                  with: {argv: [/usr/bin/pg_dump, mydb]}
        """),
    )
    refused = apply(env, path)
    assert refused.returncode == 1
    assert (
        "ops.yaml:4: tools[0].callable: module 'tests.tools_servers.python_tools' is not allowed"
        in refused.stderr
    )
    assert "ops.yaml:21: tasks[1].payload.pipeline[0].with.argv[0]" in refused.stderr
    allowed = {
        **env,
        "ORDINAUT_PYTHON_TOOLS_ALLOW": "tests.tools_servers",
        "ORDINAUT_SHELL_ALLOW": "/usr/bin/pg_dump",
    }
    result = apply(allowed, path)
    assert result.returncode == 0, result.stderr
    assert "+ tool calc.add: register" in result.stdout
    assert [e["type"] for e in await events(pool)] == [
        "tool.registered",
        "task.created",
        "task.created",
    ]
    assert "= tool calc.add: unchanged" in apply(allowed, path).stdout


async def test_the_api_publishes_the_tasks_file_schema(database_url: str, redis_url: str) -> None:
    app = create_app(ApiConfig(database_url, redis_url, token_hash("admin-token-for-tests-0123")))
    async with AsyncTestClient(app) as client:
        response = await client.get("/schema/tasks-file.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/schema+json")
    assert response.json() == tasks_file_schema()
    assert response.json()["$defs"]["FileTask"]["required"][-1] == "key"


async def test_a_file_and_api_creates_with_its_key_at_once_make_one_task(
    database_url: str, redis_url: str, tasks_file: Path, pool: asyncpg.Pool
) -> None:
    # The same key from both sides: whichever comes first creates, the others update it.
    body = {"title": "Standup", "schedule_kind": "cron", "schedule_expr": "0 9 * * *"}
    out: list[str] = []
    applier = FileApplier(pool, ApplyOptions(), out.append, out.append)
    async with api_client(database_url, redis_url) as served:
        creates = [
            served.post("/tasks", json={**body, "key": "standup"}, headers=AUTH) for _ in range(8)
        ]
        applied, *responses = await asyncio.gather(applier.apply_path(tasks_file), *creates)
    assert applied, out
    codes = [response.status_code for response in responses]
    assert set(codes) <= {200, 201}, [r.text for r in responses if r.status_code >= 300]
    assert await pool.fetchval("SELECT count(*) FROM task WHERE key = 'standup'") == 1
    assert len(await events(pool, "task.created")) == 3
