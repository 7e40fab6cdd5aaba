"""The command line: clear one-line errors, version, schedule preview, migrate."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from domain.envelope import EventMeta
from domain.events import EventReceived
from projections.registry import inline_projections
from services.store.events import StreamAppend, append_in_transaction


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        env=environment,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("ordinaut ")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ORDINAUT_DATABASE_URL": "mysql://x/y"}, "ORDINAUT_DATABASE_URL"),
        ({"ORDINAUT_REDIS_URL": "http://localhost"}, "ORDINAUT_REDIS_URL"),
        ({"ORDINAUT_LOG_FORMAT": "xml"}, "ORDINAUT_LOG_FORMAT"),
        ({"ORDINAUT_PORT": "eighty"}, "ORDINAUT_PORT"),
        ({"ORDINAUT_PORT": "70000"}, "ORDINAUT_PORT"),
        ({"ORDINAUT_ADMIN_TOKEN": "short"}, "ORDINAUT_ADMIN_TOKEN"),
        ({"ORDINAUT_WEBHOOK_KEY": "short"}, "ORDINAUT_WEBHOOK_KEY"),
        ({"ORDINAUT_RELAY_MAXLEN": "lots"}, "ORDINAUT_RELAY_MAXLEN"),
        ({"ORDINAUT_WEBHOOK_MAX_ATTEMPTS": "0"}, "ORDINAUT_WEBHOOK_MAX_ATTEMPTS"),
    ],
)
def test_invalid_settings_fail_with_one_clear_line(env: dict[str, str], named: str) -> None:
    result = run("migrate", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert named in lines[0]
    assert "Traceback" not in result.stderr


def test_a_taken_port_is_one_clear_line(tmp_path: object) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("up", "--port", str(port), "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_schedule_preview_prints_occurrences_with_offsets() -> None:
    result = run(
        "schedule",
        "preview",
        "--schedule-kind",
        "cron",
        "--schedule-expr",
        "30 8 * * 1-5",
        "--timezone",
        "Europe/Chisinau",
        "--after",
        "2026-11-20T12:00:00+02:00",
        "--count",
        "3",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        "2026-11-23T08:30:00+02:00",
        "2026-11-24T08:30:00+02:00",
        "2026-11-25T08:30:00+02:00",
    ]


def test_schedule_preview_rejects_a_bad_rule_with_the_field() -> None:
    result = run("schedule", "preview", "--schedule-kind", "cron", "--schedule-expr", "61 * * * *")
    assert result.returncode == 2
    assert "minute" in result.stderr
    assert "Traceback" not in result.stderr


def test_schedule_preview_batch_answers_every_line() -> None:
    lines = [
        {
            "schedule_kind": "rrule",
            "schedule_expr": "FREQ=DAILY;COUNT=2",
            "timezone": "UTC",
            "after": "2026-01-01T00:00:00Z",
            "count": 5,
            "dtstart": "2026-01-01T09:00:00",
        },
        {"schedule_kind": "cron", "schedule_expr": "* * 31 2 *", "timezone": "UTC"},
        "not an object",
    ]
    stdin = "\n".join(json.dumps(line) for line in lines) + "\n{broken\n"
    result = run("schedule", "preview", "--batch", "-", stdin=stdin)
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert answers[0] == {"occurrences": ["2026-01-01T09:00:00+00:00", "2026-01-02T09:00:00+00:00"]}
    assert [("error" in a) for a in answers[1:]] == [True, True, True]


def test_schedule_preview_batch_reads_a_file_and_jsonl_only_formats(tmp_path: Path) -> None:
    batch = tmp_path / "requests.jsonl"
    request = {
        "schedule_kind": "cron",
        "schedule_expr": "0 9 * * *",
        "timezone": "UTC",
        "count": 1,
        "after": "2026-01-01T00:00:00Z",
    }
    batch.write_text(json.dumps(request) + "\n")
    from_file = run("schedule", "preview", "--batch", str(batch))
    assert from_file.returncode == 0, from_file.stderr
    assert json.loads(from_file.stdout) == {"occurrences": ["2026-01-01T09:00:00+00:00"]}
    rule = ("--schedule-kind", "cron", "--schedule-expr", "0 9 * * *", "--count", "1")
    single = run("schedule", "preview", *rule, "--after", "2026-01-01T00:00:00Z", "--jsonl")
    assert single.returncode == 0, single.stderr
    assert single.stdout == from_file.stdout  # one answer line, the batch's shape


@pytest.mark.parametrize(
    "args",
    [
        ("--batch", "-", "--schedule-kind", "cron", "--schedule-expr", "* * * * *"),  # a mix
        ("--jsonl",),  # the old spelling of a batch: says where it went
        ("--batch", "no-such-file.jsonl"),
    ],
)
def test_schedule_preview_refusals_are_one_line(args: tuple[str, ...]) -> None:
    result = run("schedule", "preview", *args, stdin="")
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--batch" in result.stderr or "no-such-file" in result.stderr


def test_schedule_preview_batch_never_waits_on_a_terminal() -> None:
    """`--batch -` with a terminal on stdin is refused at once instead of waiting for input."""
    leader, follower = pty.openpty()
    try:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
        result = subprocess.run(
            [sys.executable, "-m", "services.cli.main", "schedule", "preview", "--batch", "-"],
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=60,
            env=environment,
            check=False,
        )
    finally:
        os.close(leader)
        os.close(follower)
    assert result.returncode == 2
    assert "terminal" in result.stderr


def test_migrate_on_a_configured_database_is_idempotent(database_url: str) -> None:
    env = {"ORDINAUT_DATABASE_URL": database_url}
    first = run("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "applied 0 migration(s)" in first.stdout  # the test database is already migrated


async def test_events_tail_prints_the_log_then_follows_it(database_url: str) -> None:
    async def publish(pool: asyncpg.Pool, n: int) -> None:
        event = EventReceived(event_id=str(uuid.uuid4()), topic="t", payload={"n": n})
        async with pool.acquire() as conn, conn.transaction():
            meta = EventMeta(actor="tester", correlation_id="c")
            await append_in_transaction(
                conn, [StreamAppend("s", [event])], meta, inline_projections()
            )

    environment = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
    environment["ORDINAUT_DATABASE_URL"] = database_url
    async with asyncpg.create_pool(database_url, min_size=1, max_size=2) as pool:
        await publish(pool, 0)
        tail = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.cli.main",
            "events",
            "tail",
            "--type",
            "event.received",
            env=environment,
            stdout=asyncio.subprocess.PIPE,
        )
        assert tail.stdout is not None
        try:
            first = json.loads(await asyncio.wait_for(tail.stdout.readline(), 30))
            await publish(pool, 1)  # arrives live, after the catch-up
            second = json.loads(await asyncio.wait_for(tail.stdout.readline(), 30))
        finally:
            tail.terminate()
            await tail.wait()
    assert [first["data"]["payload"]["n"], second["data"]["payload"]["n"]] == [0, 1]
    assert second["position"] > first["position"]
