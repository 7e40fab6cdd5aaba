"""`ordinaut bench compare`: end-to-end throughput of N no-op jobs (enqueue -> done) for
Ordinaut, Procrastinate and Celery in the same run, on the same PostgreSQL server (a scratch
database each) and the same Redis (Celery under a key prefix of its own), rounds alternating
between the systems; then the delay from due time to start at a steady arrival rate.

Every system gets the same process budget (common.py). A peer that is not installed is
reported and the command fails with a one-line message (or, with ``--only``, is not asked for).
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from collections.abc import AsyncIterator, Sequence
from statistics import median
from typing import Any, TextIO

from ordinaut_bench.compare.common import (
    ASYNC_CONCURRENCY,
    WORKER_PROCESSES,
    Round,
    System,
    SystemUnavailable,
)
from ordinaut_bench.compare.ordinaut_system import OrdinautSystem
from ordinaut_bench.harness import Goal
from ordinaut_bench.report import percentile, print_table
from ordinaut_bench.runs import LIMITS as RUNS_LIMITS
from ordinaut_bench.scratch import scratch_database

SYSTEMS = ("ordinaut", "procrastinate", "celery")
GOALS = (
    Goal(
        "ordinaut_jobs_per_second", 2000, at_least=True, text="≥ 2,000 runs/s end-to-end on 2 cores"
    ),
    Goal(
        "ratio_procrastinate",
        5.0,
        at_least=True,
        text="≥ 5 x Procrastinate (same machine, same run)",
    ),
    Goal("ratio_celery", 3.0, at_least=True, text="≥ 3 x Celery (same machine, same run)"),
    Goal("ordinaut_delay_p50_ms", 3.0, at_least=False, text="due->start p50 ≤ 3 ms"),
    Goal("ordinaut_delay_p99_ms", 10.0, at_least=False, text="due->start p99 ≤ 10 ms"),
)
LIMITS = (
    "Due -> start: the timer fires each occurrence up to ORDINAUT_TIMER_LEAD_SECONDS (0.25 s)"
    " ahead with run_at = its due instant; an idle worker sleeps until the earliest run_at and"
    " leases then, so the path is the worker's wake-up plus one lease transaction. A worker"
    " whose lease found nothing and whose next look found work already due (it fell due between"
    " the two statements) used to wait a whole poll interval (1 s): the last runs of a burst"
    " started up to 0.9 s late (p99 785-896 ms against a p50 of 1.5 ms) until it learnt to lease"
    " again at once (services/worker/idle.py). Throughput: "
) + (RUNS_LIMITS or "")


class CompareError(Exception):
    """The comparison cannot run as asked (e.g. a peer is not installed)."""


def wanted_systems(only: Sequence[str] | None) -> list[str]:
    """The systems to compare: ``only`` those, or all of them, in SYSTEMS order."""
    return [name for name in SYSTEMS if not only or name in only]


def check_installed(wanted: Sequence[str]) -> None:
    """Fail before starting anything if a wanted peer's library is missing."""
    modules = {"procrastinate": "procrastinate", "celery": "celery"}
    missing = []
    for name in wanted:
        if name in modules:
            try:
                __import__(modules[name])
            except ImportError:
                missing.append(name)
    if missing:
        raise CompareError(
            f"{' and '.join(missing)} not installed: pip install 'ordinaut[bench]'"
            f" (or leave them out: {' '.join(f'--only {n}' for n in SYSTEMS if n not in missing)})"
        )


@contextlib.asynccontextmanager
async def _systems(
    wanted: Sequence[str], server_url: str, redis_url: str
) -> AsyncIterator[list[System]]:
    async with contextlib.AsyncExitStack() as stack:
        systems: list[System] = []
        for name in wanted:
            if name == "ordinaut":
                url = await stack.enter_async_context(scratch_database(server_url))
                systems.append(OrdinautSystem(url, redis_url))
            elif name == "procrastinate":
                from ordinaut_bench.compare.procrastinate_system import ProcrastinateSystem

                url = await stack.enter_async_context(_empty_database(server_url))
                peer = ProcrastinateSystem(url)
                await peer.prepare()
                systems.append(peer)
            else:
                from ordinaut_bench.compare.celery_system import CelerySystem

                systems.append(CelerySystem(redis_url))
            stack.push_async_callback(systems[-1].close)
        yield systems


@contextlib.asynccontextmanager
async def _empty_database(server_url: str) -> AsyncIterator[str]:
    """A new database with no Ordinaut schema in it (scratch_database migrates)."""
    import uuid

    import asyncpg

    from services.runtime.embedded import with_database

    name = f"ordinaut_bench_peer_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(server_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _throughput(
    systems: list[System], jobs: int, rounds: int, out: TextIO
) -> dict[str, list[Round]]:
    """``rounds`` rounds, each system once per round in turn (alternating)."""
    measured: dict[str, list[Round]] = {s.name: [] for s in systems}
    for n in range(rounds):
        for system in systems:
            result = await system.throughput(jobs)
            measured[system.name].append(result)
            print(
                f"round {n + 1}/{rounds} {system.name}: {jobs} jobs in {result.seconds:.2f} s"
                f" = {result.per_second:,.0f} jobs/s",
                file=out,
                flush=True,
            )
    return measured


async def _delays(
    systems: list[System], rate: int, seconds: int, out: TextIO
) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for system in systems:
        print(f"{system.name}: {rate * seconds} jobs due at {rate}/s ...", file=out, flush=True)
        found[system.name] = await system.delays(rate, rate * seconds)
    return found


def _figures(
    throughput: dict[str, list[Round]],
    delays: dict[str, list[float]],
    jobs: int,
    rounds: int,
    rate: int,
    seconds: int,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    figures: dict[str, Any] = {
        "jobs": float(jobs),
        "rounds": float(rounds),
        "rate": float(rate),
        "delay_seconds": float(seconds),
        "worker_processes": float(WORKER_PROCESSES),
        "async_concurrency": float(ASYNC_CONCURRENCY),
    }
    medians = {name: median(r.per_second for r in rs) for name, rs in throughput.items()}
    ours = medians.get("ordinaut", math.nan)
    table = []
    for name, per_second in medians.items():
        lags = delays.get(name, [])
        row = {
            "system": name,
            "jobs/s (median)": per_second,
            "rounds jobs/s": ", ".join(f"{r.per_second:,.0f}" for r in throughput[name]),
            "ordinaut / system": ours / per_second,
            "due->start p50 ms": percentile(lags, 50),
            "due->start p99 ms": percentile(lags, 99),
        }
        table.append(row)
        figures[f"{name}_jobs_per_second"] = per_second
        figures[f"{name}_delay_p50_ms"] = row["due->start p50 ms"]
        figures[f"{name}_delay_p99_ms"] = row["due->start p99 ms"]
        if name != "ordinaut":
            figures[f"ratio_{name}"] = ours / per_second
    return figures, table


async def bench_compare(
    server_url: str,
    redis_url: str,
    *,
    jobs: int = 5000,
    rounds: int = 3,
    rate: int = 100,
    seconds: int = 10,
    only: Sequence[str] | None = None,
    out: TextIO = sys.stdout,
) -> dict[str, Any]:
    """Compare the systems (``only`` those, default all) and return the figures, with the
    per-system rows under ``table`` (BENCHMARKS.md shows them as they are)."""
    wanted = wanted_systems(only)
    check_installed(wanted)
    # Procrastinate logs every deferred job at INFO; the table is what matters here.
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    print(
        f"{len(wanted)} systems, {rounds} rounds of {jobs} no-op jobs each, alternating;"
        f" {WORKER_PROCESSES} worker processes per system",
        file=out,
        flush=True,
    )
    try:
        async with _systems(wanted, server_url, redis_url) as systems:
            throughput = await _throughput(systems, jobs, rounds, out)
            delays = await _delays(systems, rate, seconds, out)
    except SystemUnavailable as exc:
        raise CompareError(str(exc)) from None
    figures, table = _figures(throughput, delays, jobs, rounds, rate, seconds)
    print_table(table, out)
    return {**figures, "table": table}
