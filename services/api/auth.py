"""Bearer-token authentication and scope checks, applied as route guards."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from services.api.auth_failures import refuse_if_too_many
from services.api.rate_limit import enforce as enforce_rate_limit
from services.runtime.admin_token import token_hash

ADMIN_SCOPE = "admin"
_limits = msgspec.json.Decoder(dict[str, str])
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ordinaut"'}


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: the actor recorded on every event they cause, and what they may do."""

    actor: str
    scopes: frozenset[str]
    # API rate limits the admin set for this agent, by route group (see agent.limits_set).
    rate_limits: dict[str, str] = msgspec.field(default_factory=dict)

    def allows(self, scope: str) -> bool:
        """True if the scope was granted (admin holds every scope)."""
        return ADMIN_SCOPE in self.scopes or scope in self.scopes

    @property
    def reader(self) -> str | None:
        """Whose events this principal may read: None for the admin (all of them), else
        the agent's own (see domain/ownership.py)."""
        return None if ADMIN_SCOPE in self.scopes else self.actor


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthorizedException("a bearer token is required", headers=_CHALLENGE)
    return token.strip()


# One indexed lookup per request and no cache, so a revocation holds from the next request on.
# Looking up a hash is not a timing leak: its value says nothing about any token an attacker
# could guess from it.
_AGENT_BY_DIGEST = """
SELECT a.id, a.scopes, l.rate_limits::text AS rate_limits
FROM agent_token t JOIN agent a ON a.id = t.agent_id
LEFT JOIN agent_limits l ON l.agent_id = a.id
WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL
"""


async def principal_for(token: str, admin_hash: bytes, pool: Any) -> Principal | None:
    """The admin, or the agent holding this live token; None for an unknown or revoked one."""
    return await principal_for_digest(token_hash(token), admin_hash, pool)


async def principal_for_digest(digest: bytes, admin_hash: bytes, pool: Any) -> Principal | None:
    """As ``principal_for``, from the token's digest (what a dashboard session keeps)."""
    if hmac.compare_digest(digest, admin_hash):
        return Principal("admin", frozenset({ADMIN_SCOPE}))
    row = await pool.fetchrow(_AGENT_BY_DIGEST, digest.hex())
    if row is None:
        return None
    limits = _limits.decode(row["rate_limits"]) if row["rate_limits"] else {}
    return Principal(row["id"], frozenset(row["scopes"]), limits)


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller's principal: the admin, or the agent holding a live token; otherwise a 401."""
    state = connection.app.state
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
