"""`bench compare` and `bench replay` machinery at tiny sizes (the figures live in
BENCHMARKS.md; these check that the benchmarks run, count right and clean up)."""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys

import asyncpg
import pytest
import redis.asyncio as redis

from ordinaut_bench.compare.driver import bench_compare
from ordinaut_bench.replay import bench_replay

PEERS_MISSING = [
    name for name in ("procrastinate", "celery") if importlib.util.find_spec(name) is None
]


async def test_compare_runs_ordinaut_alone_and_counts_every_job(
    postgres_url: str, redis_url: str
) -> None:
    out = io.StringIO()
    figures = await bench_compare(
        postgres_url, redis_url, jobs=20, rounds=1, rate=10, seconds=1, only=["ordinaut"], out=out
    )
    assert figures["ordinaut_jobs_per_second"] > 0
    assert figures["ordinaut_delay_p99_ms"] >= figures["ordinaut_delay_p50_ms"]
    assert [row["system"] for row in figures["table"]] == ["ordinaut"]
    assert "round 1/1 ordinaut: 20 jobs" in out.getvalue()


WHY_SKIPPED = (
    f"the `bench` extra is not installed (missing: {', '.join(PEERS_MISSING)}):"
    " pip install -e '.[bench]'"
)


@pytest.mark.skipif(bool(PEERS_MISSING), reason=WHY_SKIPPED)
async def test_compare_runs_the_peers_and_deletes_only_their_keys(
    postgres_url: str, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    await client.set("bench-compare-test:unrelated", "kept")
    try:
        figures = await bench_compare(
            postgres_url,
            redis_url,
            jobs=30,
            rounds=1,
            rate=20,
            seconds=1,
            only=["procrastinate", "celery"],
            out=io.StringIO(),
        )
        assert figures["procrastinate_jobs_per_second"] > 0
        assert figures["celery_jobs_per_second"] > 0
        assert figures["celery_delay_p99_ms"] >= figures["celery_delay_p50_ms"]
        assert [key async for key in client.scan_iter(match="ordinaut-bench-celery-*")] == []
        assert await client.get("bench-compare-test:unrelated") == b"kept"
    finally:
        await client.delete("bench-compare-test:unrelated")
        await client.aclose()


# Runs the CLI with procrastinate and celery made unimportable, as on a machine without the
# `bench` extra.
_WITHOUT_PEERS = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("procrastinate", "celery"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
from services.cli.main import main
sys.exit(main(["bench", "compare", "--jobs", "10"]))
"""


def test_compare_without_the_bench_extra_says_what_to_install(postgres_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
    env.update(ORDINAUT_DATABASE_URL=postgres_url, ORDINAUT_REDIS_URL="redis://127.0.0.1:1/0")
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PEERS],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "procrastinate and celery not installed" in line
    assert "pip install 'ordinaut[bench]'" in line


async def test_replay_seeds_a_realistic_log_and_rebuilds_every_run(database_url: str) -> None:
    figures = await bench_replay(database_url, events=2000, out=io.StringIO())
    assert figures["events"] == 2000
    assert figures["events_per_second"] > 0
    conn = await asyncpg.connect(database_url)
    try:
        succeeded = await conn.fetchval("SELECT count(*) FROM runs WHERE status = 'succeeded'")
        tasks = await conn.fetchval("SELECT count(*) FROM task")
        leftover = await conn.fetchval("SELECT count(*) FROM due_work")
    finally:
        await conn.close()
    assert figures["runs_rebuilt"] == succeeded > 0
    assert tasks == 1000
    assert leftover > 0  # the last cycle's runs were queued but had not finished
