"""Tool rate limits across every run and worker: a call that would go over waits its turn.

Each call takes a slot in `tool_call_slots`, under a per-tool advisory lock, on Postgres's
clock: the earliest time at which it is at most the ``calls``-th in any ``per_seconds``
window. Slots handed out are in time order, so taking the one ``calls`` back plus the window
is enough. Waiting callers hold their slot, so they go in the order they asked.
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from domain.events import ToolRateLimit

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('tool-call-slots:' || $1, 0))"
_FORGET = """
DELETE FROM tool_call_slots
WHERE address = $1 AND slot_at < clock_timestamp() - $2::float8 * interval '1 second'
"""
# The slot: now, or once the calls-th most recent one has left the window.
_TAKE = """
WITH edge AS (
    SELECT slot_at FROM tool_call_slots WHERE address = $1
    ORDER BY slot_at DESC OFFSET $2 - 1 LIMIT 1
), slot AS (
    SELECT greatest(clock_timestamp(),
                    (SELECT slot_at FROM edge) + $3::float8 * interval '1 second') AS at
)
INSERT INTO tool_call_slots (address, slot_at) SELECT $1, at FROM slot
RETURNING extract(epoch FROM slot_at - clock_timestamp())::float8
"""

log = structlog.get_logger(__name__)


class ToolThrottle:
    """Hands out call slots for rate-limited tools and sleeps until the slot comes."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def wait_turn(self, address: str, limit: ToolRateLimit) -> float:
        """Sleep until this call may go; returns how long it waited (seconds)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(_LOCK, address)
            await conn.execute(_FORGET, address, limit.per_seconds)
            wait = float(await conn.fetchval(_TAKE, address, limit.calls, limit.per_seconds))
        if wait > 0:
            log.info("tool call throttled", tool=address, wait_seconds=round(wait, 3))
            await asyncio.sleep(wait)
        return max(0.0, wait)
