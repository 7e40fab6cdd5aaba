"""Ingest throughput (ingest stream -> store -> events stream) and relay lag.

Throughput: N entries (about 200-byte JSON payloads, a third with their own idempotency key,
a few event tasks subscribed so some entries fire runs) are added first; then the consumers
start and the clock runs from their start to the last event committed (stored), and to the
relay having published it (relayed). Lag: entries are then added at a fixed rate (open loop)
and a reader of the events stream notes when each event arrives (see relay_lag.py).

The consumers run in this process, the relay in its own (`ordinaut relay`). The streams are
scratch ones (``bench-<id>:ingest``, ``bench-<id>:events``, the runs fired announced on
``bench-<id>:work``), never the live ones, so a running service on the same Redis cannot pick
the entries (or wake-ups for runs of the scratch database) up; they are deleted afterwards.

No wait is open-ended: one that sees no progress for ``STALL_SECONDS`` (or whose relay process
or stream reader ended) fails with an IngestBenchError naming what did not arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, TextIO

import asyncpg
import redis.asyncio as redis

from domain.envelope import EventMeta
from domain.events import TaskCreated, TaskDefinition, task_stream
from ordinaut_bench.append import TOPICS, _payload
from ordinaut_bench.harness import Goal
from ordinaut_bench.relay_lag import Watcher, watching
from ordinaut_bench.report import percentile, print_table
from projections.registry import inline_projections
from services.channels.events import StreamWriter
from services.cli.progress import ProgressBar
from services.ingest.consumer import IngestConfig, IngestConsumer
from services.store.events import StreamAppend, append_in_transaction
from services.store.order import START, Cursor
from services.store.pool import open_pool

_XADD_BATCH = 1000
# A wait that sees no progress for this long has stalled (a batch takes seconds even when the
# machine is busy); it fails rather than waiting on.
STALL_SECONDS = 120.0
# How long the consumers and the relay get to stop once asked.
STOP_SECONDS = 30.0
GOALS = (Goal("relay_lag_p99_ms", 20, at_least=False, text="relay lag p99 ≤ 20 ms"),)


class IngestBenchError(RuntimeError):
    """Something the bench waited for did not arrive (or a part of it ended early)."""


async def _subscribe(pool: asyncpg.Pool) -> None:
    """A few event tasks, as a real deployment has, so that matching is part of the cost."""
    definitions = [
        TaskDefinition(
            title="paid",
            schedule_kind="event",
            schedule_expr="orders.paid",
            filter="payload.amount_cents > `990000`",
        ),
        TaskDefinition(
            title="builds",
            schedule_kind="event",
            schedule_expr="builds.*",
            filter="payload.amount_cents < `10000`",
        ),
        TaskDefinition(title="never", schedule_kind="event", schedule_expr="nothing.*"),
    ]
    appends = []
    for definition in definitions:
        task_id = str(uuid.uuid4())
        created = TaskCreated(task_id=task_id, definition=definition)
        appends.append(StreamAppend(task_stream(task_id), [created], 0))
    async with pool.acquire() as conn, conn.transaction():
        await append_in_transaction(
            conn, appends, EventMeta(actor="bench", correlation_id="bench"), inline_projections()
        )


def _entry(rng: random.Random, n: int) -> dict[Any, Any]:
    fields = {"topic": rng.choice(TOPICS), "payload": json.dumps(_payload(rng)), "source": "bench"}
    if n % 3 == 0:
        fields["idempotency_key"] = f"bench-{n}-{rng.getrandbits(32)}"
    return fields


async def _produce(client: redis.Redis, stream: str, count: int) -> float:
    """Add ``count`` entries as fast as Redis takes them; returns the seconds it took."""
    rng = random.Random(7)
    started = time.perf_counter()
    for start in range(0, count, _XADD_BATCH):
        async with client.pipeline(transaction=False) as pipe:
            for n in range(start, min(start + _XADD_BATCH, count)):
                pipe.xadd(stream, _entry(rng, n))
            await pipe.execute()
    return time.perf_counter() - started


async def _produce_at(client: redis.Redis, stream: str, rate: int, seconds: int) -> None:
    """Add ``rate`` entries a second for ``seconds``, on schedule (open loop)."""
    rng, sent, total = random.Random(11), 0, rate * seconds
    started = time.perf_counter()
    while sent < total:
        due = min(total, int((time.perf_counter() - started) * rate) + 1)
        if due > sent:
            async with client.pipeline(transaction=False) as pipe:
                for n in range(sent, due):
                    pipe.xadd(stream, _entry(rng, n))
                await pipe.execute()
            sent = due
        await asyncio.sleep(0.002)


async def bench_ingest(
    database_url: str,
    redis_url: str,
    *,
    events: int = 50_000,
    consumers: int = 1,
    batch: int = 1000,
    rate: int = 1000,
    seconds: int = 10,
    relay: bool = True,
    out: TextIO = sys.stdout,
) -> dict[str, float]:
    """Fill a scratch ingest stream and time its draining into the store and (with ``relay``)
    onto a scratch events stream; then add ``rate`` entries a second for ``seconds`` and
    report the relay lag."""
    prefix = f"bench-{uuid.uuid4().hex[:10]}"
    config = IngestConfig(
        stream=f"{prefix}:ingest",
        group=f"{prefix}:ingestors",
        dead_stream=f"{prefix}:dead",
        work_stream=f"{prefix}:work",
        batch=batch,
    )
    events_stream = f"{prefix}:events" if relay else None
    client = redis.Redis.from_url(redis_url, socket_timeout=30)
    try:
        async with (
            open_pool(database_url, size=consumers + 2) as pool,
            _relaying(database_url, redis_url, events_stream) as process,
        ):
            figures = await _measure(
                pool, client, config, events_stream, process, consumers, events, rate, seconds, out
            )
        figures["dead_lettered"] = float(await client.xlen(config.dead_stream))
    finally:
        await client.delete(
            config.stream, config.dead_stream, config.work_stream, events_stream or config.stream
        )
        await client.aclose()
    figures.update(consumers=float(consumers), batch=float(batch))
    print_table([{k: round(v, 2) for k, v in figures.items()}], out)
    return figures


async def _measure(
    pool: asyncpg.Pool,
    client: redis.Redis,
    config: IngestConfig,
    events_stream: str | None,
    relay: _Relay | None,
    consumers: int,
    events: int,
    rate: int,
    seconds: int,
    out: TextIO,
) -> dict[str, float]:
    await _subscribe(pool)
    print(f"adding {events} entries to {config.stream} ...", file=out, flush=True)
    produce_seconds = await _produce(client, config.stream, events)
    async with _consuming(pool, client, config, consumers) as members:
        stored, relayed = await _drain(pool, members, events, client, events_stream, relay)
        figures = {
            "events": float(events),
            "stored_seconds": stored,
            "events_per_second": events / stored,
            "relayed_per_second": events / relayed if events_stream else math.nan,
            "xadd_per_second": events / produce_seconds,
            "runs_fired": float(await pool.fetchval("SELECT count(*) FROM runs")),
        }
        if events_stream is None:
            return figures
        print(f"adding {rate} entries/s for {seconds} s ...", file=out, flush=True)
        top = await _last_position(pool)
        async with watching(client, events_stream, top) as watcher:
            await _produce_at(client, config.stream, rate, seconds)
            await _drain(
                pool, members, events + rate * seconds, client, events_stream, relay, watcher
            )
        seen = watcher.seen
    return {
        **figures,
        "rate": float(rate),
        "relay_lag_p50_ms": percentile(seen.relay_ms, 50),
        "relay_lag_p99_ms": percentile(seen.relay_ms, 99),
        "entry_to_stream_p99_ms": percentile(seen.end_to_end_ms, 99),
    }


class _Relay:
    """The `ordinaut relay` process the bench started."""

    def __init__(self, process: subprocess.Popen[bytes], stream: str) -> None:
        self.process, self.stream = process, stream

    def check(self) -> None:
        """Raise at once if the relay exited (it runs until the bench stops it)."""
        if (code := self.process.poll()) is not None:
            raise IngestBenchError(f"the relay to {self.stream} exited early (exit code {code})")


@contextlib.asynccontextmanager
async def _relaying(
    database_url: str, redis_url: str, stream: str | None
) -> AsyncIterator[_Relay | None]:
    """`ordinaut relay` in its own process (as deployed beside ingest), publishing the scratch
    database to ``stream`` (None: no relay), for the duration of the block."""
    if stream is None:
        yield None
        return
    env = {
        **os.environ,
        "ORDINAUT_DATABASE_URL": database_url,
        "ORDINAUT_REDIS_URL": redis_url,
        "ORDINAUT_LOG_LEVEL": "warning",
    }
    relay = subprocess.Popen(  # noqa: ASYNC220, S603 - returns at once; our own command
        [sys.executable, "-m", "services.cli.main", "relay", "--stream", stream],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield _Relay(relay, stream)
    finally:
        relay.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(relay.wait, STOP_SECONDS)
        except subprocess.TimeoutExpired:
            relay.kill()  # SIGKILL cannot be ignored; reap it so no zombie is left
            await asyncio.to_thread(relay.wait, STOP_SECONDS)


@contextlib.asynccontextmanager
async def _consuming(
    pool: asyncpg.Pool, client: redis.Redis, config: IngestConfig, consumers: int
) -> AsyncIterator[list[IngestConsumer]]:
    stop = asyncio.Event()
    members = [
        IngestConsumer(pool, client, inline_projections(), config, name=f"bench-{n}")
        for n in range(consumers)
    ]
    tasks = [asyncio.create_task(member.run(stop)) for member in members]
    try:
        yield members
    finally:
        stop.set()
        _, running = await asyncio.wait(tasks, timeout=STOP_SECONDS)
        for task in running:
            task.cancel()
        if running:
            raise IngestBenchError(
                f"{len(running)} ingest consumer(s) did not stop within"
                f" {STOP_SECONDS:g} s of being asked"
            )


async def _drain(
    pool: asyncpg.Pool,
    members: list[IngestConsumer],
    total: int,
    client: redis.Redis,
    events_stream: str | None,
    relay: _Relay | None,
    watcher: Watcher | None = None,
) -> tuple[float, float]:
    """Wait until ``total`` entries are stored, then until the relay published them all;
    (seconds to store, seconds to relay) from now. Fails once either stops moving."""
    bar, started = ProgressBar("ingest"), time.perf_counter()
    stalled = _Stall("ingest consumers")
    while (done := sum(m.recorded for m in members)) < total:
        bar.update(done, total)
        stalled.check(done, f"{done} of {total} entries stored")
        if relay is not None:
            relay.check()
        await asyncio.sleep(0.005)
    stored = time.perf_counter() - started
    bar.finish()
    if events_stream is None:
        return stored, stored
    last = await _last_position(pool)
    writer = StreamWriter(client, events_stream)
    stalled = _Stall(f"relay to {events_stream}")
    while (top := watcher.seen.top if watcher is not None else await writer.top()) < last:
        stalled.check(top.txid << 40 | top.position, f"{top.entry_id} of {last.entry_id} published")
        if relay is not None:
            relay.check()
        if watcher is not None:
            watcher.check()
        await asyncio.sleep(0.005)
    return stored, time.perf_counter() - started


class _Stall:
    """Fails a wait whose progress figure has not grown for ``STALL_SECONDS``."""

    def __init__(self, what: str, seconds: float | None = None) -> None:
        self.what, self.seconds = what, STALL_SECONDS if seconds is None else seconds
        self.best, self.since = -1, time.perf_counter()

    def check(self, progress: int, status: str) -> None:
        now = time.perf_counter()
        if progress > self.best:
            self.best, self.since = progress, now
        elif now - self.since > self.seconds:
            raise IngestBenchError(
                f"{self.what} stalled: {status}, nothing new for {self.seconds:g} s"
            )


async def _last_position(pool: asyncpg.Pool) -> Cursor:
    """The last event in the log's order (the stream's top once the relay caught up)."""
    row = await pool.fetchrow(
        "SELECT txid, position FROM events ORDER BY txid DESC, position DESC LIMIT 1"
    )
    return START if row is None else Cursor(int(row["txid"]), row["position"])
