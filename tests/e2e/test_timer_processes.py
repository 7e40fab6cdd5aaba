"""Two `ordinaut timer` processes on one database: every occurrence fires once, none missed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from tests.support import create_tasks, db_now, every_second, fired

TASKS = 1000
SECONDS = 6


def start_timer(database_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
    env["ORDINAUT_DATABASE_URL"] = database_url
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "timer"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.timeout(180)
async def test_two_timer_processes_fire_each_occurrence_exactly_once(
    pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    start = (await db_now(pool)).replace(microsecond=0) + timedelta(seconds=4)
    ids = await create_tasks(pool, [every_second() for _ in range(TASKS)], start)
    timers = [start_timer(database_url, tmp_path / f"timer-{n}.log") for n in range(2)]
    try:
        await asyncio.sleep((start - await db_now(pool)).total_seconds() + SECONDS + 0.5)
    finally:
        for timer in timers:
            timer.send_signal(signal.SIGTERM)
        codes = [timer.wait(30) for timer in timers]
    assert codes == [0, 0], [(tmp_path / f"timer-{n}.log").read_text() for n in range(2)]

    by_task = await fired(pool)
    assert set(by_task) == set(ids)
    expected = [start + timedelta(seconds=n) for n in range(SECONDS)]
    for times in by_task.values():
        assert len(times) == len(set(times)), "an occurrence fired twice"
        assert sorted(times)[:SECONDS] == expected, "an occurrence was missed"
    total = sum(len(times) for times in by_task.values())
    assert await pool.fetchval("SELECT count(*) FROM due_work") == total
