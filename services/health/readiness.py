"""Readiness: can this process serve? PostgreSQL answers with its schema current, Redis answers.

Each check gets a short deadline; a failing one is reported by name, never raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import msgspec
import redis.asyncio as redis

from services.store.migrate import pending_migrations

_CHECK_TIMEOUT_SECONDS = 2.0


class Readiness(msgspec.Struct, frozen=True):
    """Whether this process can serve, and each dependency's state."""

    status: str
    checks: dict[str, str]

    @property
    def ready(self) -> bool:
        """Every dependency answered."""
        return self.status == "ready"


async def _check(name: str, probe: Awaitable[str | None]) -> tuple[str, str]:
    try:
        result = await asyncio.wait_for(probe, _CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure means "not ready", reported by name
        return name, f"failing: {type(exc).__name__}"
    return name, result or "ok"


async def _postgres(pool: Any) -> str | None:
    async with pool.acquire() as conn:
        pending = await pending_migrations(conn)
    return f"failing: {len(pending)} migrations pending" if pending else None


async def _redis(client: redis.Redis) -> str | None:
    await client.ping()
    return None


async def readiness(pool: Any, client: redis.Redis) -> Readiness:
    """Each dependency's state; ``ready`` only when every one answers."""
    results = await asyncio.gather(
        _check("postgres", _postgres(pool)), _check("redis", _redis(client))
    )
    checks = dict(results)
    ok = all(value == "ok" for value in checks.values())
    return Readiness("ready" if ok else "not_ready", checks)
