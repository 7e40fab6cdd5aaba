"""`ordinaut events replay` from the command line: JSON lines, a Redis stream, bad bounds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import redis.asyncio as redis

from tests.integration.test_cli import run
from tests.relay_support import append_received, stream_positions, unique_stream


def _env(database_url: str, redis_url: str) -> dict[str, str]:
    return {"ORDINAUT_DATABASE_URL": database_url, "ORDINAUT_REDIS_URL": redis_url}


async def test_replay_a_position_range_to_json_lines(
    database_url: str, redis_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    await append_received(pool, 30, per_command=4)
    out = tmp_path / "events.jsonl"
    env = _env(database_url, redis_url)
    result = await asyncio.to_thread(
        run, "events", "replay", "--from", "5", "--to", "12", "--jsonl", str(out), env=env
    )
    assert result.returncode == 0, result.stderr
    assert "replayed 8 events" in result.stderr
    assert [json.loads(line)["position"] for line in out.read_text().splitlines()] == list(
        range(5, 13)
    )


async def test_replay_a_time_range_to_a_redis_stream(
    database_url: str, redis_url: str, pool: asyncpg.Pool
) -> None:
    await append_received(pool, 10)
    rows = await pool.fetch("SELECT position, recorded_at FROM events ORDER BY position")
    start, end = rows[3]["recorded_at"].isoformat(), rows[6]["recorded_at"].isoformat()
    target = unique_stream()
    env = _env(database_url, redis_url)
    try:
        result = await asyncio.to_thread(
            run,
            "events",
            "replay",
            "--from",
            start,
            "--to",
            end,
            "--type",
            "event.received",
            "--to-redis",
            target,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        async with redis.Redis.from_url(redis_url) as client:
            assert await stream_positions(client, target) == [r["position"] for r in rows[3:7]]
    finally:
        async with redis.Redis.from_url(redis_url) as client:
            await client.delete(target)


def test_bad_bounds_and_missing_targets_are_one_line_errors(tmp_path: Path) -> None:
    env = {"ORDINAUT_DATABASE_URL": "postgresql://127.0.0.1:1/none"}
    bad = run("events", "replay", "--from", "yesterday", "--jsonl", "-", env=env)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "ordinaut: error: --from must be a position or an ISO-8601 time, not 'yesterday'"
    ]
    missing = run("events", "replay", "--from", "1", env=env)
    assert missing.returncode == 2
    assert "--to-redis" in missing.stderr
    assert "Traceback" not in bad.stderr + missing.stderr
