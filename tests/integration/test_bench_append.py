"""`bench append` measures PostgreSQL's own one-row insert transactions (pgbench) right next to
the store's single-event commands, at each concurrency, and says how the two compare."""

from __future__ import annotations

import io
import math

import pytest

from ordinaut_bench.append import bench_append, goals
from ordinaut_bench.harness import judge
from ordinaut_bench.pgbench import pgbench_path


@pytest.mark.skipif(pgbench_path() is None, reason="pgbench is not installed")
async def test_pgbench_and_the_store_are_measured_side_by_side(database_url: str) -> None:
    out = io.StringIO()
    figures = await bench_append(
        database_url, events=40, batch_size=10, concurrency=(1, 2), seconds=1, out=out
    )
    for level in (1, 2):
        assert figures[f"pgbench_c{level}_tx_per_s"] > 0
        assert figures[f"single_c{level}_commands_per_s"] > 0
        ratio = figures[f"single_vs_pgbench_c{level}"]
        assert not math.isnan(ratio)
        assert ratio > 0
    assert [row["appenders"] for row in figures["table"]] == [1, 2]
    assert "pgbench tx/s" in out.getvalue()
    assert "ratio" in out.getvalue()
    verdict = judge(goals(2), figures)["single_vs_pgbench_c2"]
    assert verdict["met"] is (figures["single_vs_pgbench_c2"] >= 0.5)
