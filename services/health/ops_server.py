"""Each process's operations port: /metrics for Prometheus and /health for people and probes.

Separate from the API port, unauthenticated and bound to ORDINAUT_METRICS_HOST (127.0.0.1 by
default), so a scraper needs no token and the API's rule (every route needs a token) holds.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as redis
from litestar import Litestar, Response, get
from litestar.datastructures import State
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from services.health.report import HealthReport, report
from services.runtime.supervisor import Component, api_component, bind_socket
from services.store.pool import open_pool


@get("/metrics", include_in_schema=False)
async def metrics(state: State) -> Response[bytes]:
    """Every metric of this process, with the sampled gauges fresh."""
    await report(state.pool, state.redis, state.events_stream)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


@get("/health", include_in_schema=False)
async def health(state: State) -> HealthReport:
    """Each component ok, degraded or failing, with its numbers."""
    return await report(state.pool, state.redis, state.events_stream)


@get("/health/live", include_in_schema=False)
async def live() -> dict[str, str]:
    """200 while the process runs."""
    return {"status": "ok"}


@get("/health/ready", include_in_schema=False)
async def ready(state: State) -> Response[dict[str, str]]:
    """503 when this process cannot reach its database."""
    try:
        await state.pool.fetchval("SELECT 1")
    except Exception as exc:  # unreachable means not ready, whatever the cause
        return Response({"status": "not_ready", "db": type(exc).__name__}, status_code=503)
    return Response({"status": "ready"})


def ops_app(database_url: str, redis_url: str | None, events_stream: str) -> Litestar:
    """The ops app: its own two connections, so a busy API pool never hides the numbers."""

    @contextlib.asynccontextmanager
    async def connections(app: Litestar) -> AsyncIterator[None]:
        async with open_pool(database_url, size=2, warm=1) as pool:
            client = redis.Redis.from_url(redis_url, socket_timeout=2.0) if redis_url else None
            app.state.pool, app.state.redis = pool, client
            try:
                yield
            finally:
                if client is not None:
                    await client.aclose()

    state: Any = State({"events_stream": events_stream})
    return Litestar(
        route_handlers=[metrics, health, live, ready],
        lifespan=[connections],
        state=state,
        openapi_config=None,
    )


def ops_component(
    database_url: str, redis_url: str | None, host: str, port: int, events_stream: str
) -> Component:
    """Serve the ops app on host:port as a supervised component."""
    sock = bind_socket(host, port)
    served = api_component(ops_app(database_url, redis_url, events_stream), sock, lambda: None)
    return Component("ops", served.run)
