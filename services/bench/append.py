"""Event-store append throughput and latency: single-event commands versus batched commands."""

from __future__ import annotations

import asyncio
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
from projections.base import ProjectionSet
from projections.registry import inline_projections
from services.bench.report import percentile, print_table
from services.cli.progress import ProgressBar
from services.store.events import StreamAppend, append_in_transaction
from services.store.migrate import migrate

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


async def bench_append(
    database_url: str,
    *,
    events: int = 20000,
    batch_size: int = 500,
    concurrency: int = 4,
    out: TextIO = sys.stdout,
) -> dict[str, float]:
    """Measure single-event and batched appends against a migrated database; print and return."""
    rng = random.Random(0x0BE7C4)
    single_commands = _commands(rng, events // 10, 1)
    batched_commands = _commands(rng, events, batch_size)
    await _migrate(database_url)
    async with asyncpg.create_pool(
        database_url, min_size=concurrency, max_size=concurrency
    ) as pool:
        single = await _measure(pool, "single", single_commands, concurrency)
        batched = await _measure(pool, f"batch={batch_size}", batched_commands, concurrency)
    print(f"append benchmark: concurrency={concurrency}, {STREAMS} streams", file=out)
    print_table([single, batched], out)
    return _figures("single", single) | _figures("batched", batched)
