"""Tool rate limits across every run and worker: a call that would go over waits its turn.

Each call takes a slot in `tool_call_slots` under a per-tool advisory lock, on Postgres's
clock (so workers on different hosts agree); `domain.rate_limits.next_slot` says which.
A waiting caller holds its slot, so callers go in the order they asked.
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from domain.events import ToolRateLimit
from domain.rate_limits import next_slot

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('tool-call-slots:' || $1, 0))"
# Slots more than a window old can no longer hold a call back.
_FORGET = """
DELETE FROM tool_call_slots
WHERE address = $1 AND slot_at < clock_timestamp() - $2::float8 * interval '1 second'
"""
_RECENT = """
SELECT extract(epoch FROM clock_timestamp())::float8 AS now,
       array(SELECT extract(epoch FROM slot_at)::float8 FROM tool_call_slots
             WHERE address = $1 ORDER BY slot_at DESC LIMIT $2) AS slots
"""
_TAKE = "INSERT INTO tool_call_slots (address, slot_at) VALUES ($1, to_timestamp($2))"

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
            row = await conn.fetchrow(_RECENT, address, limit.calls)
            assert row is not None  # a SELECT without FROM always returns its row
            now, recent = float(row["now"]), sorted(row["slots"])
            slot = next_slot(recent, now, limit.calls, limit.per_seconds)
            await conn.execute(_TAKE, address, slot)
        wait = slot - now
        if wait > 0:
            log.info("tool call throttled", tool=address, wait_seconds=round(wait, 3))
            await asyncio.sleep(wait)
        return max(0.0, wait)
