"""The ingest consumer group: read `ordinaut:ingest` in batches, record, dead-letter, acknowledge.

Each batch is one transaction (throughput), but every entry is its own command: a bad entry
is refused before the transaction, and one the database still refuses sends the batch
through again one entry at a time, so it never fails the others. Refused entries go to the
dead stream with the reason and are acknowledged: nothing blocks the group. An entry is
acknowledged only after its event committed; one that was delivered again (its consumer
died first) is recorded once, by its idempotency key (the entry id when it has none).

Like the wake-ups (services/channels/work.py), this uses redis-py: it needs XAUTOCLAIM of dead
consumers' entries, delivery counts from XPENDING and a reconnect loop, which FastStream offers
only on Redis >= 8.4.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.asyncio as redis
import structlog
from redis.exceptions import RedisError, ResponseError

from projections.base import ProjectionSet
from services.application.triggers import Publication, publish_many
from services.channels.ingest import DEAD_STREAM, INGEST_GROUP, INGEST_STREAM
from services.channels.work import WORK_STREAM, Announcer
from services.ingest.entries import Entry, Refused, read_entry
from services.runtime.metrics import DEAD_LETTERS
from services.runtime.settings import DEFAULTS
from services.runtime.tracing import traced
from services.store.errors import IdempotencyKeyReused, StoreError

log = structlog.get_logger(__name__)
# Errors that say a server is away (or going away), not that an entry is bad.
_UNAVAILABLE = (
    RedisError,
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.TransactionRollbackError,
)


@dataclass(frozen=True)
class IngestConfig:
    """Where the consumer reads and how it treats entries."""

    stream: str = INGEST_STREAM
    group: str = INGEST_GROUP
    dead_stream: str = DEAD_STREAM
    batch: int = DEFAULTS.ingest_batch
    block_ms: int = 1000
    max_payload_bytes: int = DEFAULTS.ingest_max_payload_bytes
    # An entry delivered this many times without being acknowledged is dead-lettered.
    max_deliveries: int = DEFAULTS.ingest_max_deliveries
    # A consumer that has not acknowledged an entry for this long is presumed dead.
    reclaim_idle_ms: int = 30_000
    max_backoff_seconds: float = 5.0
    # Where runs the entries made ready are announced to workers.
    work_stream: str = WORK_STREAM


def consumer_name() -> str:
    """Unique per process, as consumer names must be."""
    return f"ingest-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class _Batch:
    """What became of a batch's entries: recorded (or repeats), or refused with a reason."""

    done: list[Entry] = field(default_factory=list)
    dead: list[tuple[Entry, str]] = field(default_factory=list)


class IngestConsumer:
    """One member of the ingest group."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        client: redis.Redis,
        projections: ProjectionSet,
        config: IngestConfig = IngestConfig(),
        *,
        name: str | None = None,
    ) -> None:
        self.pool, self.client, self.projections, self.config = pool, client, projections, config
        self.name = name or consumer_name()
        self.announcer = Announcer(client, config.work_stream)
        self.recorded = 0  # events recorded (repeats not counted), for benchmarks and logs
        self.dead = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until stopped, retrying with capped backoff while Redis or Postgres is away."""
        delay, failing = 0.1, False
        log.info("ingest started", consumer=self.name, stream=self.config.stream)
        while not stop.is_set():
            try:
                await self._ensure_group()
                # Our own pending entries first: after a failure they were read, not recorded.
                await self._drain("0", stop)
                if failing:
                    log.info("ingest resumed", consumer=self.name)
                failing, delay = False, 0.1
                await self._consume(stop)
            except Exception as exc:  # never take `ordinaut up` down: retry
                if not isinstance(exc, _UNAVAILABLE):
                    log.exception("ingest failed unexpectedly; retrying", consumer=self.name)
                elif not failing:
                    log.warning("ingest paused; retrying", reason=str(exc), consumer=self.name)
                failing = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, self.config.max_backoff_seconds)
        log.info("ingest stopped", consumer=self.name, recorded=self.recorded, dead=self.dead)

    async def _ensure_group(self) -> None:
        try:
            await self.client.xgroup_create(
                self.config.stream, self.config.group, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _consume(self, stop: asyncio.Event) -> None:
        last_claim = 0.0
        while not stop.is_set():
            if time.monotonic() - last_claim > self.config.reclaim_idle_ms / 2000:
                await self.reclaim()
                last_claim = time.monotonic()
            await self._drain(">", stop, once=True)

    async def _drain(self, start: str, stop: asyncio.Event, *, once: bool = False) -> None:
        """Read and process entries from ``start`` (">" new ones, "0" our pending ones)."""
        while not stop.is_set():
            answer: Any = await self.client.xreadgroup(  # redis-py types the reply loosely
                self.config.group,
                self.name,
                {self.config.stream: start},
                count=self.config.batch,
                block=self.config.block_ms if start == ">" else None,
            )
            found = [pair for _, pairs in answer or () for pair in pairs]
            entries = [_entry(i, f) for i, f in found if f]
            if len(entries) < len(found):  # trimmed away while pending: nothing left to do
                gone = [i for i, f in found if not f]
                await self.client.xack(self.config.stream, self.config.group, *gone)
            if entries:
                await self.process(entries)
            if once or not entries:
                return

    async def reclaim(self) -> None:
        """Take over entries dead consumers left pending; dead-letter the over-delivered."""
        start = "0-0"
        while True:
            reply = await self.client.xautoclaim(
                self.config.stream,
                self.config.group,
                self.name,
                self.config.reclaim_idle_ms,
                start_id=start,
                count=self.config.batch,
            )
            start, claimed = reply[0], [_entry(i, f) for i, f in reply[1] if f]
            if claimed:
                counts = await self._deliveries(claimed)
                limit = self.config.max_deliveries
                over = [e for e in claimed if counts.get(e.id, 0) > limit]
                if over:
                    reason = f"delivered more than {limit} times without being acknowledged"
                    await self._finish(_Batch(dead=[(e, reason) for e in over]))
                await self.process([e for e in claimed if counts.get(e.id, 0) <= limit])
            if start in (b"0-0", "0-0"):
                return

    async def _deliveries(self, entries: list[Entry]) -> dict[str, int]:
        rows = await self.client.xpending_range(
            self.config.stream,
            self.config.group,
            min=entries[0].id,
            max=entries[-1].id,
            count=len(entries) * 2,
            consumername=self.name,
        )
        return {_text(row["message_id"]): int(row["times_delivered"]) for row in rows}  # type: ignore[arg-type]

    @traced("ordinaut.ingest.batch", lambda _, entries: {"ordinaut.entries": len(entries)})
    async def process(self, entries: list[Entry]) -> None:
        """Record the good entries, dead-letter the rest, then acknowledge them all."""
        if not entries:
            return
        batch, good = _Batch(), []
        for entry in entries:
            try:
                publication = read_entry(entry, self.config.stream, self.config.max_payload_bytes)
            except Refused as refused:
                batch.dead.append((entry, refused.reason))
            else:
                good.append((entry, publication))
        run_ids = await self._record(batch, good)
        await self._finish(batch)
        await self.announcer.announce(run_ids)

    async def _record(self, batch: _Batch, items: list[tuple[Entry, Publication]]) -> list[str]:
        """Record in one transaction or, if the database refuses that, one entry at a time."""
        if not items:
            return []
        try:
            return await self._record_all(batch, items)
        except _UNAVAILABLE:
            raise  # nothing wrong with the entries: run() retries them once it can
        except Exception as exc:  # whatever one entry does, the others go on
            if len(items) == 1:  # an entry the checks let through, e.g. text Postgres refuses
                if not isinstance(exc, asyncpg.DataError | StoreError):
                    log.exception("ingest entry could not be recorded", entry=items[0][0].id)
                batch.dead.append((items[0][0], f"refused by the store: {exc}"))
                return []
        run_ids: list[str] = []
        for item in items:
            run_ids += await self._record(batch, [item])
        return run_ids

    async def _record_all(self, batch: _Batch, items: list[tuple[Entry, Publication]]) -> list[str]:
        async with self.pool.acquire() as conn, conn.transaction():
            publications = [p for _, p in items]
            outcomes = await publish_many(conn, self.projections, publications, remember=False)
        run_ids: list[str] = []
        for (entry, _), outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, IdempotencyKeyReused):
                batch.dead.append((entry, f"idempotency_key: {outcome}"))
                continue
            batch.done.append(entry)
            if not outcome.replayed:
                self.recorded += 1
                run_ids += [*outcome.run_ids, *outcome.resumed_runs]
        return run_ids

    async def _finish(self, batch: _Batch) -> None:
        """Dead-letter the refused entries, then acknowledge every entry of the batch."""
        if batch.dead:
            async with self.client.pipeline(transaction=False) as pipe:
                for entry, reason in batch.dead:
                    pipe.xadd(self.config.dead_stream, self._dead_fields(entry, reason))
                await pipe.execute()
            self.dead += len(batch.dead)
            DEAD_LETTERS.labels(self.config.dead_stream).inc(len(batch.dead))
            log.info(
                "ingest entries dead-lettered", count=len(batch.dead), first_reason=batch.dead[0][1]
            )
        ids = [e.id for e in batch.done] + [e.id for e, _ in batch.dead]
        if ids:
            await self.client.xack(self.config.stream, self.config.group, *ids)

    def _dead_fields(self, entry: Entry, reason: str) -> dict[Any, Any]:
        ours = {"reason": reason, "source_stream": self.config.stream, "source_id": entry.id}
        original = {(f"original_{k}" if k in ours else k): v for k, v in entry.text().items()}
        return {**ours, **original}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry(entry_id: bytes | str, fields: dict[bytes, bytes]) -> Entry:
    return Entry(_text(entry_id), dict(fields))
