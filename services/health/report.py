"""How Ordinaut is doing, component by component, with the numbers behind each verdict.

Served as GET /health on the API and on every process's ops port, and the same sampling
feeds the gauges on /metrics. Each component is ok, degraded or failing; the whole is the
worst of them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import msgspec
import redis.asyncio as redis

from projections.base import Connection
from services.channels.ingest import INGEST_STREAM
from services.channels.work import WORK_STREAM
from services.health import presence
from services.runtime.metrics import (
    DUE_WORK_OLDEST,
    DUE_WORK_READY,
    EVENT_HORIZON_AGE,
    RUNS_WAITING,
    STREAM_PENDING,
    WORKERS_ALIVE,
)
from services.store.horizon import oldest_writer

# (degraded from, failing from), in seconds
TIMER_LAG = (5.0, 60.0)
OLDEST_READY = (30.0, 300.0)
RELAY_LAG = (5.0, 60.0)
_ORDER = {"ok": 0, "degraded": 1, "failing": 2}
_TIMEOUT = 2.0

_TIMER = """
SELECT coalesce(extract(epoch FROM now() - min(next_run_at)), 0)::float8 FROM task
WHERE status = 'active' AND NOT deleted AND next_run_at < now()
"""
_READY = """
SELECT count(*) AS ready,
       coalesce(extract(epoch FROM now() - min(run_at)), 0)::float8 AS oldest
FROM due_work
WHERE run_at <= now() AND NOT parked AND (locked_until IS NULL OR locked_until < now())
"""
HORIZON_AGE = (5.0, 60.0)
# Events after the relay's checkpoint (a cursor in the log's order, services/store/order.py).
# Runs parked in a durable wait (a partial index keeps this cheap: migrations/0040).
_WAITING = "SELECT count(*) FROM runs WHERE status = 'waiting'"
_RELAY = """
SELECT c.name IS NOT NULL AS relayed,
       (SELECT count(*) FROM events e
        WHERE (e.txid, e.position) > (coalesce(c.txid, '0'::xid8), coalesce(c.position, 0)))
           AS behind,
       (SELECT extract(epoch FROM now() - e.recorded_at)::float8 FROM events e
        WHERE (e.txid, e.position) > (coalesce(c.txid, '0'::xid8), coalesce(c.position, 0))
        ORDER BY e.txid, e.position LIMIT 1) AS age
FROM (SELECT 1) AS one LEFT JOIN relay_checkpoint c ON c.name = $1
"""


class Component(msgspec.Struct, frozen=True, omit_defaults=True):
    """One part's verdict and its numbers."""

    status: str
    numbers: dict[str, float] = msgspec.field(default_factory=dict)
    detail: str | None = None


class HealthReport(msgspec.Struct, frozen=True):
    """The verdict for the whole, and every component's."""

    status: str
    components: dict[str, Component]


def _grade(value: float, limits: tuple[float, float]) -> str:
    return "failing" if value >= limits[1] else "degraded" if value >= limits[0] else "ok"


async def _timed(probe: Any) -> float:
    started = time.perf_counter()
    await asyncio.wait_for(probe, _TIMEOUT)
    return round((time.perf_counter() - started) * 1000, 3)


async def report(
    pool: asyncpg.Pool, client: redis.Redis | None, events_stream: str = "ordinaut:events"
) -> HealthReport:
    """Sample every component (and set the gauges on the way)."""
    components: dict[str, Component] = {}
    try:
        components["db"] = Component("ok", {"latency_ms": await _timed(pool.fetchval("SELECT 1"))})
    except Exception as exc:  # a down database is the report, not an error
        components["db"] = Component("failing", detail=type(exc).__name__)
        return _whole(components)
    components["redis"] = await _redis(client)
    async with pool.acquire() as conn:
        lag = float(await conn.fetchval(_TIMER))
        components["timer"] = Component(_grade(lag, TIMER_LAG), {"lag_seconds": round(lag, 3)})
        ready = await conn.fetchrow(_READY)
        assert ready is not None
        DUE_WORK_READY.set(ready["ready"])
        DUE_WORK_OLDEST.set(ready["oldest"])
        RUNS_WAITING.set(await conn.fetchval(_WAITING))
        components["ready_work"] = Component(
            _grade(ready["oldest"], OLDEST_READY),
            {"ready": ready["ready"], "oldest_seconds": round(ready["oldest"], 3)},
        )
        components["relay"] = await _relay(conn, events_stream)
        components["event_horizon"] = await _horizon(conn)
        workers = await presence.alive(conn)
        WORKERS_ALIVE.set(workers)
        # No worker is only a problem when there is work for one.
        status = "ok" if workers or not ready["ready"] else "failing"
        components["workers"] = Component(status, {"alive": workers})
    if client is not None:
        await _sample_pending(client, events_stream)
    return _whole(components)


async def _redis(client: redis.Redis | None) -> Component:
    if client is None:
        return Component("degraded", detail="not configured; workers poll Postgres")
    try:
        return Component("ok", {"latency_ms": await _timed(client.ping())})
    except Exception as exc:  # Redis down degrades Ordinaut; Postgres keeps the truth
        return Component("degraded", detail=type(exc).__name__)


async def _relay(conn: Connection, stream: str) -> Component:
    row = await conn.fetchrow(_RELAY, stream)
    assert row is not None
    behind = row["behind"]
    if not row["relayed"]:
        return Component(
            "degraded",
            {"behind_events": float(behind)},
            "no relay has published to this stream yet",
        )
    age = float(row["age"] or 0.0) if behind else 0.0
    return Component(
        _grade(age, RELAY_LAG), {"behind_events": float(behind), "lag_seconds": round(age, 3)}
    )


async def _horizon(conn: Connection) -> Component:
    """The oldest open writing transaction: readers of the log wait for it (store/order.py)."""
    holder = await oldest_writer(conn)
    age = holder.age_seconds if holder is not None else 0.0
    EVENT_HORIZON_AGE.set(age)
    if holder is None:
        return Component("ok", {"age_seconds": 0.0})
    status = _grade(age, HORIZON_AGE)
    numbers = {"age_seconds": round(age, 3), "pid": float(holder.pid)}
    return Component(status, numbers, holder.describe() if status != "ok" else None)


async def _sample_pending(client: redis.Redis, events_stream: str) -> None:
    for stream in (events_stream, INGEST_STREAM, WORK_STREAM):
        try:
            groups: Any = await asyncio.wait_for(client.xinfo_groups(stream), _TIMEOUT)
        except Exception:  # noqa: S112 - a stream that does not exist yet has no groups
            continue
        for group in groups:
            name = group["name"]
            name = name.decode() if isinstance(name, bytes) else str(name)
            STREAM_PENDING.labels(stream, name).set(group["pending"])


def _whole(components: dict[str, Component]) -> HealthReport:
    worst = max((c.status for c in components.values()), key=_ORDER.__getitem__)
    return HealthReport(worst, components)
