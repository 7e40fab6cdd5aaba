"""Bearer-token authentication and scope checks, applied as route guards."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from services.api.auth_failures import refuse_if_too_many
from services.api.rate_limit import enforce as enforce_rate_limit
from services.api.state import state_of
from services.application.principal import Principal, principal_for

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ordinaut"'}


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthorizedException("a bearer token is required", headers=_CHALLENGE)
    return token.strip()


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller's principal: the admin, or the agent holding a live token; otherwise a 401."""
    state = state_of(connection.app.state)
    principal = await principal_for(_bearer(connection), state.admin_token_hash, state.pool)
    if principal is None:
        refuse_if_too_many(connection)  # 429 once this address fails too often
        # The same answer for an unknown and a revoked token: never say which it was.
        raise NotAuthorizedException("the token is not valid", headers=_CHALLENGE)
    return principal


Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Coroutine[Any, Any, None]]


def requires(scope: str) -> Guard:
    """A guard admitting callers whose token holds ``scope`` (403 otherwise)."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = await authenticate(connection)
        # Counted before the scope check, so refused requests spend the caller's budget too.
        await enforce_rate_limit(connection, principal.actor, principal.rate_limits)
        if not principal.allows(scope):
            raise PermissionDeniedException(f"this needs the {scope!r} scope")
        connection.scope["state"]["principal"] = principal

    guard.scope = scope  # type: ignore[attr-defined]  # lets tests list what each route needs
    return guard


async def admit_any_token(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """MCP over HTTP's guard: any valid token may connect (401 otherwise); each MCP tool then
    checks its own scope. Leaves the principal and the backend for the session.

    It has no ``scope`` attribute on purpose: the route matrix test checks scoped routes.
    """
    principal = await authenticate(connection)
    await enforce_rate_limit(connection, principal.actor, principal.rate_limits)
    state = connection.scope["state"]
    state["principal"], state["backend"] = principal, state_of(connection.app.state).backend


def required_scope(handler: BaseRouteHandler) -> str | None:
    """The scope a route's guard demands (None for open routes such as health)."""
    for guard in handler.guards or ():
        scope = getattr(guard, "scope", None)
        if isinstance(scope, str):
            return scope
    return None


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The principal a guard admitted for this request."""
    principal: Principal = connection.scope["state"]["principal"]
    return principal
