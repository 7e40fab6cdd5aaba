"""Ingest throughput: N entries through an ingest stream -> stored `event.received` events.

The entries (about 200-byte JSON payloads, a third with their own idempotency key, a few
event tasks subscribed so some entries fire runs) are added first; then the consumers start
and the clock runs from their start to the last event committed. The streams are scratch
ones (``bench-<id>:ingest``), never the live `ordinaut:ingest`, so a running service on the
same Redis cannot pick the entries up; they are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
from typing import TextIO

import asyncpg
import redis.asyncio as redis

from domain.envelope import EventMeta
from domain.events import TaskCreated, TaskDefinition, task_stream
from projections.registry import inline_projections
from services.bench.append import TOPICS, _payload
from services.bench.report import print_table
from services.cli.progress import ProgressBar
from services.ingest.consumer import IngestConfig, IngestConsumer
from services.store.events import StreamAppend, append_in_transaction
from services.store.pool import open_pool

_XADD_BATCH = 1000


async def _subscribe(pool: asyncpg.Pool) -> None:
    """A few event tasks, as a real deployment has, so that matching is part of the cost."""
    definitions = [
        TaskDefinition(title="paid", schedule_kind="event", schedule_expr="orders.paid",
                       filter="payload.amount_cents > `990000`"),
        TaskDefinition(title="builds", schedule_kind="event", schedule_expr="builds.*",
                       filter="payload.amount_cents < `10000`"),
        TaskDefinition(title="never", schedule_kind="event", schedule_expr="nothing.*"),
    ]  # fmt: skip
    appends = []
    for definition in definitions:
        task_id = str(uuid.uuid4())
        created = TaskCreated(task_id=task_id, definition=definition)
        appends.append(StreamAppend(task_stream(task_id), [created], 0))
    async with pool.acquire() as conn, conn.transaction():
        await append_in_transaction(conn, appends, EventMeta(actor="bench", correlation_id="bench"),
                                    inline_projections())  # fmt: skip


async def _produce(client: redis.Redis, stream: str, count: int) -> float:
    """Add ``count`` entries; returns the seconds it took."""
    rng = random.Random(7)
    started = time.perf_counter()
    for start in range(0, count, _XADD_BATCH):
        async with client.pipeline(transaction=False) as pipe:
            for n in range(start, min(start + _XADD_BATCH, count)):
                fields = {"topic": rng.choice(TOPICS), "payload": json.dumps(_payload(rng)),
                          "source": "bench"}  # fmt: skip
                if n % 3 == 0:
                    fields["idempotency_key"] = f"bench-{n}"
                pipe.xadd(stream, fields)  # type: ignore[arg-type]
            await pipe.execute()
    return time.perf_counter() - started


async def bench_ingest(
    database_url: str,
    redis_url: str,
    *,
    events: int = 50_000,
    consumers: int = 1,
    batch: int = 1000,
    out: TextIO = sys.stdout,
) -> dict[str, float]:
    """Fill a scratch ingest stream, let ``consumers`` drain it, report events/s."""
    prefix = f"bench-{uuid.uuid4().hex[:10]}"
    config = IngestConfig(stream=f"{prefix}:ingest", group=f"{prefix}:ingestors",
                          dead_stream=f"{prefix}:dead", batch=batch)  # fmt: skip
    client = redis.Redis.from_url(redis_url, socket_timeout=30)
    try:
        async with open_pool(database_url, size=consumers + 2) as pool:
            await _subscribe(pool)
            print(f"adding {events} entries to {config.stream} ...", file=out, flush=True)
            produce_seconds = await _produce(client, config.stream, events)
            seconds, recorded = await _drain(pool, client, config, consumers, events)
            runs = int(await pool.fetchval("SELECT count(*) FROM runs"))
        dead = int(await client.xlen(config.dead_stream))
    finally:
        await client.delete(config.stream, config.dead_stream)
        await client.aclose()
    figures = {
        "events": float(recorded),
        "seconds": seconds,
        "events_per_second": recorded / seconds,
        "xadd_per_second": events / produce_seconds,
        "runs_fired": float(runs),
        "dead_lettered": float(dead),
        "consumers": float(consumers),
        "batch": float(batch),
    }
    print_table([{k: round(v, 2) for k, v in figures.items()}], out)
    print("relay lag: not measured (no relay on this branch)", file=out)
    return figures


async def _drain(
    pool: asyncpg.Pool, client: redis.Redis, config: IngestConfig, consumers: int, events: int
) -> tuple[float, int]:
    """Run the consumers until every entry is an event; (seconds, events recorded)."""
    stop = asyncio.Event()
    members = [IngestConsumer(pool, client, inline_projections(), config, name=f"bench-{n}")
               for n in range(consumers)]  # fmt: skip
    bar = ProgressBar("ingest")
    started = time.perf_counter()
    tasks = [asyncio.create_task(member.run(stop)) for member in members]
    try:
        while (done := sum(m.recorded for m in members)) < events:
            bar.update(done, events)
            if any(task.done() for task in tasks):
                raise RuntimeError("an ingest consumer stopped during the benchmark")
            if time.perf_counter() - started > 600:
                raise RuntimeError(f"only {done} of {events} entries ingested in 600 s")
            await asyncio.sleep(0.01)
        seconds = time.perf_counter() - started
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    bar.finish()
    return seconds, sum(m.recorded for m in members)
