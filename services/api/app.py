"""The Litestar application factory: routes, errors, OpenAPI, and connections in the lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio as redis
from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.plugins.prometheus import PrometheusConfig

from domain.limits import WorkLimits
from domain.outbound import Network
from domain.rate_limits import AUTH_FAILURES, RateLimit, RateLimits
from projections.registry import inline_projections
from services.api import boundary, contract
from services.api.auth_failures import FailedAuthLimiter
from services.api.calls import DEPENDENCIES
from services.api.middleware import correlation_middleware
from services.api.problems import EXCEPTION_HANDLERS
from services.api.rate_limit import DEFAULT_PREFIX, RateLimiter
from services.api.routes import (
    agent_limits,
    agents,
    asyncapi,
    dry_runs,
    events,
    health,
    runs,
    schedules,
    secrets,
    task_files,
    tasks,
    tools,
    workers,
)
from services.api.state import AppState, state_of
from services.api.ui.render import template_config
from services.api.ui.router import ui_router
from services.channels.work import Announcer
from services.runtime.tracing import api_plugins
from services.secrets.box import SecretBox
from services.store.pool import open_pool

MAX_BODY_BYTES = 1024 * 1024
_HTTP_METRICS = PrometheusConfig(app_name="ordinaut", prefix="ordinaut_http", group_path=True)


@dataclass(frozen=True)
class ApiConfig:
    """What the API needs from the composition root."""

    database_url: str
    redis_url: str
    admin_token_hash: bytes
    pool_size: int = 10
    # The key agents' webhook secrets derive from; None = secrets are not shown.
    webhook_key: bytes | None = None
    rate_limits: RateLimits = field(default_factory=RateLimits)
    # Where the buckets live in Redis (tests give each its own prefix).
    rate_limit_prefix: str = DEFAULT_PREFIX
    # Failed authentications per client address and API process (None: not limited).
    auth_failure_limit: RateLimit | None = AUTH_FAILURES
    # Seals stored secrets (None: POST /secrets answers 503).
    secret_key: bytes | None = None
    # The stream the relay fills (its lag is part of GET /health).
    events_stream: str = "ordinaut:events"
    # Programs `shell.exec` steps may run (ORDINAUT_SHELL_ALLOW): checked at task creation.
    shell_allow: tuple[str, ...] = ()
    # Module prefixes python tools may come from (ORDINAUT_PYTHON_TOOLS_ALLOW).
    python_allow: tuple[str, ...] = ()
    # Networks MCP servers imported over HTTP may be on although not public (None: loopback).
    outbound_allow: tuple[Network, ...] | None = None
    # What one run may do: checked at task creation and in dry runs (ORDINAUT_FOREACH_MAX_*...).
    work_limits: WorkLimits = field(default_factory=WorkLimits)


class Mount(Protocol):
    """What another package serves under the API (MCP at /mcp): its route and lifespan. The
    composition root passes mounts in, so the API imports no other process."""

    route: Any  # a Litestar route handler

    def lifespan(self, app: Litestar) -> AbstractAsyncContextManager[None]:
        """Runs for as long as the app does."""
        ...


def create_app(
    config: ApiConfig, *, mounts: Sequence[Mount] = (), extra_routes: Sequence[Any] = ()
) -> Litestar:
    """Build the app; connections open in its lifespan, never at import time."""

    @contextlib.asynccontextmanager
    async def connections(app: Litestar) -> AsyncIterator[None]:
        state = state_of(app.state)
        async with open_pool(config.database_url, size=config.pool_size) as pool:
            client = redis.Redis.from_url(config.redis_url, socket_timeout=2.0)
            state.pool, state.redis = pool, client
            # One for the app, so a Redis that hangs costs one timeout, then a quiet spell.
            state.announcer = Announcer(client)
            # Its own client with short timeouts: a hanging Redis must not slow every request.
            limits = redis.Redis.from_url(
                config.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
            )
            state.rate_limiter = RateLimiter(
                limits, config.rate_limits, prefix=config.rate_limit_prefix
            )
            try:
                yield
            finally:
                await client.aclose()
                await limits.aclose()

    app = Litestar(
        route_handlers=[
            *(mount.route for mount in mounts),
            health.live,
            health.ready,
            health.components,
            workers.list_workers,
            events.list_events,
            events.publish_event,
            schedules.preview_schedule,
            *agents.ROUTES,
            *agent_limits.ROUTES,
            *dry_runs.ROUTES,
            *tasks.ROUTES,
            *runs.ROUTES,
            *tools.ROUTES,
            *secrets.ROUTES,
            *task_files.ROUTES,
            *asyncapi.ROUTES,
            ui_router(),
            *extra_routes,
        ],
        lifespan=[connections, *(mount.lifespan for mount in mounts)],
        state=_initial_state(config),
        # HTTP metrics by route template (group_path), never by raw path: ids would explode
        # the number of series.
        middleware=[_HTTP_METRICS.middleware],
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=MAX_BODY_BYTES,
        template_config=template_config(),
        openapi_config=OpenAPIConfig(
            title="Ordinaut",
            version="0.1.0",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(path="/")],
            components=contract.SECURITY_COMPONENTS,
        ),
        before_request=boundary.check_input,
        debug=False,
        plugins=api_plugins(),  # OpenTelemetry, when the OTEL_* variables ask for it
    )
    contract.document(app)
    # Around the whole app, not in `middleware`: Litestar runs route middleware only once a
    # route matched, so an unknown path (404) or method (405) would get no correlation id.
    app.asgi_handler = correlation_middleware(app.asgi_handler)
    return app


def _initial_state(config: ApiConfig) -> AppState:
    box = SecretBox(config.secret_key) if config.secret_key is not None else None
    return AppState(
        {
            "admin_token_hash": config.admin_token_hash,
            "projections": inline_projections(),
            "webhook_key": config.webhook_key,
            "secret_box": box,
            "auth_failures": FailedAuthLimiter(config.auth_failure_limit),
            "events_stream": config.events_stream,
            "shell_allow": config.shell_allow,
            "python_allow": config.python_allow,
            "outbound_allow": config.outbound_allow,
            "work_limits": config.work_limits,
        }
    )
