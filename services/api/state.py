"""The API's application state, typed: what the factory sets once and the lifespan opens."""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis
from litestar.datastructures import State

from domain.limits import WorkLimits
from domain.outbound import Network
from projections.base import ProjectionSet
from services.api.auth_failures import FailedAuthLimiter
from services.api.rate_limit import RateLimiter
from services.application.context import Backend
from services.channels.work import Announcer
from services.secrets.box import SecretBox


class AppState(State):
    """``app.state``, with a type for every entry (Litestar's State is a plain mapping).

    Handlers take it as ``state: AppState``; guards and middleware read it with ``state_of``.
    """

    # Set by the app factory, from the configuration.
    admin_token_hash: bytes
    projections: ProjectionSet
    webhook_key: bytes | None
    secret_box: SecretBox | None
    auth_failures: FailedAuthLimiter
    events_stream: str
    shell_allow: tuple[str, ...]
    python_allow: tuple[str, ...]
    outbound_allow: tuple[Network, ...] | None
    work_limits: WorkLimits
    # Opened in the lifespan, before the first request.
    pool: Any
    redis: redis.Redis
    announcer: Announcer
    rate_limiter: RateLimiter

    @property
    def backend(self) -> Backend:
        """The store, announcer and limits every operation runs against."""
        return Backend(
            self.pool, self.projections, self.announcer, self.shell_allow, self.work_limits
        )


def state_of(app_state: State) -> AppState:
    """``app.state`` as the API's typed state (the factory always builds an ``AppState``)."""
    if not isinstance(app_state, AppState):
        raise TypeError("the API's state is built by services.api.app.create_app")
    return app_state
