"""Liveness and readiness probes (no authentication)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Response, get
from litestar.openapi.datastructures import ResponseSpec

from services.api.state import AppState
from services.health.report import HealthReport, report
from services.store.migrate import pending_migrations

_CHECK_TIMEOUT_SECONDS = 2.0


class Readiness(msgspec.Struct, frozen=True):
    """Whether this process can serve, and each dependency's state."""

    status: str
    checks: dict[str, str]


@get("/health/live", tags=["health"], summary="The process is up")
async def live() -> dict[str, str]:
    """Always 200 while the process runs."""
    return {"status": "ok"}


async def _check(name: str, probe: Any) -> tuple[str, str]:
    try:
        result = await asyncio.wait_for(probe, _CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure means "not ready", reported by name
        return name, f"failing: {type(exc).__name__}"
    return name, result or "ok"


async def _postgres(state: AppState) -> str | None:
    async with state.pool.acquire() as conn:
        pending = await pending_migrations(conn)
    return f"failing: {len(pending)} migrations pending" if pending else None


async def _redis(state: AppState) -> str | None:
    await state.redis.ping()
    return None


@get(
    "/health/ready",
    tags=["health"],
    summary="Postgres and Redis reachable, schema current",
    responses={503: ResponseSpec(Readiness, description="A dependency is failing (named)")},
)
async def ready(state: AppState) -> Response[Readiness]:
    """200 when every dependency answers; 503 (with the failing ones named) otherwise."""
    results = await asyncio.gather(
        _check("postgres", _postgres(state)), _check("redis", _redis(state))
    )
    checks = dict(results)
    ok = all(value == "ok" for value in checks.values())
    body = Readiness("ready" if ok else "not_ready", checks)
    return Response(body, status_code=200 if ok else 503)


@get("/health", tags=["health"], summary="Each component's state, with its numbers")
async def components(state: AppState) -> HealthReport:
    """db, redis, timer lag, oldest ready work, relay lag and workers alive: each ok, degraded
    or failing; the status is the worst of them. Always 200 (use /health/ready for probes)."""
    return await report(state.pool, state.redis, state.events_stream)
