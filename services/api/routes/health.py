"""Liveness and readiness probes (no authentication)."""

from __future__ import annotations

from litestar import Response, get
from litestar.openapi.datastructures import ResponseSpec

from services.api.state import AppState
from services.health.readiness import Readiness, readiness
from services.health.report import HealthReport, report


@get("/health/live", tags=["health"], summary="The process is up")
async def live() -> dict[str, str]:
    """Always 200 while the process runs."""
    return {"status": "ok"}


@get(
    "/health/ready",
    tags=["health"],
    summary="Postgres and Redis reachable, schema current",
    responses={503: ResponseSpec(Readiness, description="A dependency is failing (named)")},
)
async def ready(state: AppState) -> Response[Readiness]:
    """200 when every dependency answers; 503 (with the failing ones named) otherwise."""
    body = await readiness(state.pool, state.redis)
    return Response(body, status_code=200 if body.ready else 503)


@get("/health", tags=["health"], summary="Each component's state, with its numbers")
async def components(state: AppState) -> HealthReport:
    """db, redis, timer lag, oldest ready work, relay lag and workers alive: each ok, degraded
    or failing; the status is the worst of them. Always 200 (use /health/ready for probes)."""
    return await report(state.pool, state.redis, state.events_stream)
