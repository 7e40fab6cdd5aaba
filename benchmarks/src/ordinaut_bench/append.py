"""Event-store append throughput and latency: single-event commands versus batched commands."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

import asyncpg

from domain.envelope import EventMeta
from domain.events import EventReceived
from ordinaut_bench.harness import Goal, collector_paused, ticking
from ordinaut_bench.pgbench import STORE_SCRIPT, pgbench_database, pgbench_path, run_pgbench
from ordinaut_bench.report import percentile, print_table
from projections.base import ProjectionSet
from projections.registry import inline_projections
from services.cli.progress import ProgressBar
from services.store.events import StreamAppend, append_in_transaction
from services.store.group import LANES, GroupCommitter
from services.store.migrate import migrate
from services.store.pool import open_pool

STREAMS = 100
TOPICS = ("orders.created", "orders.paid", "invoices.sent", "users.signed_up", "builds.finished")

Command = list[StreamAppend]


def _payload(rng: random.Random) -> dict[str, Any]:
    """About 200 bytes of JSON once encoded, shaped like a typical webhook body."""
    return {
        "id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "amount_cents": rng.randrange(100, 1_000_000),
        "currency": rng.choice(("EUR", "USD", "GBP")),
        "customer": {"id": f"cus_{rng.getrandbits(48):012x}", "tier": rng.choice(("free", "pro"))},
        "tags": rng.sample(["urgent", "retry", "eu", "us", "beta", "vip"], 2),
        "note": "benchmark event for the append path",
    }


def _event(rng: random.Random) -> EventReceived:
    return EventReceived(
        event_id=str(uuid.UUID(int=rng.getrandbits(128))),
        topic=rng.choice(TOPICS),
        payload=_payload(rng),
        occurred_at=datetime.now(UTC),
        source="bench",
    )


def _command(rng: random.Random, size: int) -> Command:
    """``size`` events spread over random streams, one StreamAppend per stream touched."""
    by_stream: defaultdict[str, list[EventReceived]] = defaultdict(list)
    for _ in range(size):
        by_stream[f"bench-{rng.randrange(STREAMS)}"].append(_event(rng))
    return [StreamAppend(stream, events) for stream, events in by_stream.items()]


def _commands(rng: random.Random, events: int, size: int) -> list[Command]:
    """Commands of ``size`` events (the last one may be smaller) totalling ``events``."""
    return [_command(rng, min(size, events - start)) for start in range(0, events, size)]


async def _append(pool: asyncpg.Pool, command: Command, projections: ProjectionSet) -> float:
    """Append one command in its own transaction; returns its latency in seconds."""
    meta = EventMeta(actor="bench", correlation_id=str(uuid.uuid4()))
    started = time.perf_counter()
    async with pool.acquire() as conn, conn.transaction():
        await append_in_transaction(conn, command, meta, projections)
    return time.perf_counter() - started


async def _worker(
    pool: asyncpg.Pool,
    queue: Iterator[Command],
    projections: ProjectionSet,
    out: list[float],
    bar: ProgressBar,
    total: int,
) -> None:
    for command in queue:
        out.append(await _append(pool, command, projections))
        bar.update(len(out), total)


async def _run(
    pool: asyncpg.Pool, commands: Sequence[Command], concurrency: int
) -> tuple[float, list[float]]:
    """Drain ``commands`` with ``concurrency`` appenders; returns (seconds, latencies)."""
    projections = inline_projections()
    queue = iter(commands)
    latencies: list[float] = []
    bar = ProgressBar("append commands")
    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(_worker(pool, queue, projections, latencies, bar, len(commands)))
    bar.finish()
    return time.perf_counter() - started, latencies


# Commands each appender makes before the clock starts and then sends in turn: building them
# (random payloads, ids) is the load generator's work, not the store's, as pgbench's is.
PREPARED_COMMANDS = 2_000


def _prepared(rng: random.Random) -> list[tuple[Command, EventMeta]]:
    return [
        (
            _command(rng, 1),
            EventMeta(actor="bench", correlation_id=str(uuid.UUID(int=rng.getrandbits(128)))),
        )
        for _ in range(PREPARED_COMMANDS)
    ]


async def _timed_worker(
    committer: GroupCommitter,
    prepared: list[tuple[Command, EventMeta]],
    until: float,
    out: list[float],
) -> None:
    for command, meta in itertools.cycle(prepared):
        if time.perf_counter() >= until:
            return
        started = time.perf_counter()
        await committer.append(command, meta)
        out.append(time.perf_counter() - started)


async def _run_single(
    database_url: str, concurrency: int, seconds: int, rng: random.Random
) -> tuple[float, float, list[float], int]:
    """Single-event commands from ``concurrency`` concurrent callers of this process for
    ``seconds``, through the store's group committer as the service's commands go; returns
    (seconds taken, CPU seconds this process used, latencies, transactions used)."""
    latencies: list[float] = []
    async with (
        open_pool(database_url, size=LANES) as pool,
        ticking(f"single-event appends, {concurrency} appenders", seconds),
    ):
        committer = GroupCommitter(pool, inline_projections(), lanes=LANES)
        prepared = [_prepared(random.Random(rng.getrandbits(64))) for _ in range(concurrency)]
        with collector_paused():
            started, cpu_before = time.perf_counter(), time.process_time()
            until = started + seconds
            async with asyncio.TaskGroup() as group:
                for commands in prepared:
                    group.create_task(_timed_worker(committer, commands, until, latencies))
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_before
    return elapsed, cpu, latencies, committer.transactions


async def _compare_at(
    database_url: str, pgbench_url: str, concurrency: int, seconds: int, rng: random.Random
) -> dict[str, Any]:
    """pgbench and then the store, both with ``concurrency`` clients for ``seconds``."""
    async with ticking(f"pgbench one-row inserts, {concurrency} clients", seconds):
        pgbench_tps = await run_pgbench(pgbench_url, concurrency, seconds)
    elapsed, cpu, latencies, transactions = await _run_single(
        database_url, concurrency, seconds, rng
    )
    commands_per_s = len(latencies) / elapsed
    async with ticking(f"pgbench with the store's statements, {concurrency} clients", seconds):
        shape_tps = await run_pgbench(database_url, concurrency, seconds, STORE_SCRIPT)
    return {
        "appenders": concurrency,
        "pgbench tx/s": pgbench_tps,
        "commands/s": commands_per_s,
        "ratio": commands_per_s / pgbench_tps if pgbench_tps else math.nan,
        "pgbench store-shaped tx/s": shape_tps,
        # How many commands shared a transaction (the group committer's groups), on average.
        "commands/tx": len(latencies) / max(1, transactions),
        "p50 ms": percentile(latencies, 50) * 1000,
        "p99 ms": percentile(latencies, 99) * 1000,
        # The appenders' own CPU per command (Python, asyncpg, the kernel's socket work): with
        # the load average, it tells how much of a command's time is the client's.
        "client CPU ms/command": 1000 * cpu / max(1, len(latencies)),
        "client CPU %": 100 * cpu / elapsed,
    }


def _row(mode: str, events: int, commands: int, seconds: float, lat: list[float]) -> dict[str, Any]:
    return {
        "mode": mode,
        "events": events,
        "commands": commands,
        "seconds": seconds,
        "events/s": events / seconds,
        "p50 ms": percentile(lat, 50) * 1000,
        "p99 ms": percentile(lat, 99) * 1000,
    }


async def _measure(
    pool: asyncpg.Pool, mode: str, commands: list[Command], concurrency: int
) -> dict[str, Any]:
    seconds, latencies = await _run(pool, commands, concurrency)
    events = sum(len(a.events) for command in commands for a in command)
    return _row(mode, events, len(commands), seconds, latencies)


def _figures(prefix: str, row: dict[str, Any]) -> dict[str, float]:
    return {
        f"{prefix}_events": float(row["events"]),
        f"{prefix}_seconds": row["seconds"],
        f"{prefix}_events_per_s": row["events/s"],
        f"{prefix}_p50_ms": row["p50 ms"],
        f"{prefix}_p99_ms": row["p99 ms"],
    }


async def _migrate(database_url: str) -> None:
    """Idempotent: the caller normally migrated already, this only makes sure."""
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
    finally:
        await conn.close()


def goals(concurrency: int) -> tuple[Goal, ...]:
    """Done-when 2 of issue 20, at the highest concurrency measured."""
    return (
        Goal(
            f"single_vs_pgbench_c{concurrency}",
            0.5,
            True,
            f"single-event commands/s ≥ 50% of pgbench one-row inserts at {concurrency} clients",
        ),
    )


async def bench_append(
    database_url: str,
    *,
    events: int = 20000,
    batch_size: int = 500,
    concurrency: Sequence[int] = (1, 4, 16),
    seconds: int = 5,
    out: TextIO = sys.stdout,
) -> dict[str, Any]:
    """At each concurrency, pgbench's one-row insert transactions and then the store's
    single-event commands for ``seconds`` each; then ``events`` in batched commands at the
    highest concurrency. Prints and returns the figures (``table``: one row per concurrency)."""
    rng = random.Random(0x0BE7C4)
    await _migrate(database_url)
    if pgbench_path() is None:
        print("pgbench not found: its figures are n/a", file=out)
    rows: list[dict[str, Any]] = []
    async with pgbench_database(database_url) as pgbench_url:
        for level in concurrency:
            rows.append(await _compare_at(database_url, pgbench_url, level, seconds, rng))
    top = max(concurrency)
    async with open_pool(database_url, size=top) as pool:
        batched = await _measure(
            pool, f"batch={batch_size}", _commands(rng, events, batch_size), top
        )
    print(f"append benchmark: {STREAMS} streams, {seconds} s per measurement", file=out)
    print_table(rows, out)
    print(f"batched commands at concurrency {top}:", file=out)
    print_table([batched], out)
    figures: dict[str, Any] = {"table": rows, "seconds_each": float(seconds)}
    for row in rows:
        level = row["appenders"]
        figures[f"single_c{level}_commands_per_s"] = row["commands/s"]
        figures[f"pgbench_c{level}_tx_per_s"] = row["pgbench tx/s"]
        figures[f"single_vs_pgbench_c{level}"] = row["ratio"]
        figures[f"single_c{level}_p99_ms"] = row["p99 ms"]
        figures[f"pgbench_store_shaped_c{level}_tx_per_s"] = row["pgbench store-shaped tx/s"]
    figures["notes"] = LIMITS
    return figures | _figures("batched", batched)


# What holds single-event commands back (updated when measured); shown in BENCHMARKS.md.
LIMITS = (
    "Round trips and the commit, not a lock. Single-event commands go through the store's group"
    " committer (services/store/group.py), as the notifier's do: the commands that arrive while"
    " a group is in flight share the next transaction. These commands (external events, no"
    " expected version, no idempotency key) need nothing read between the lock and the insert,"
    " and their only projected rows are ownership rows known before they are stored, so a group"
    " is one statement that locks the streams, numbers and inserts the events and files their"
    " ownership rows, and is its own transaction: one round trip, where it was four (BEGIN; the"
    " lock-and-insert statement; the ownership rows; COMMIT), which gave 0.40-0.61 of pgbench"
    " at 16 appenders. Appenders that wait for each command move in step, so a group holds all"
    " of them (`commands/tx`: 1, 4, 16) and one group is in flight at a time: a group is a chain"
    " of the client's work, PostgreSQL's and the WAL flush (~0.22 ms by pg_test_fsync on this"
    " machine), where pgbench's 16 independent one-row commits are flushed together. At one"
    " appender the store's one-row command pays the same round trips as pgbench's plus the"
    " client's Python, so the ratio is lower there. Commands that expect a version or carry a"
    " key take the transaction (four round trips and more)."
)
