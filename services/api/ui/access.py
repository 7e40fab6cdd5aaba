"""Who is looking: the session guard every dashboard route passes, and the caller it acts as."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from services.api.rate_limit import enforce as enforce_rate_limit
from services.api.state import state_of
from services.api.ui.session import COOKIE, UiSession, find_session
from services.application.context import Caller


class NotSignedIn(Exception):
    """The request carries no live session (pages answer with a redirect to the sign-in)."""


def needs(scope: str) -> dict[str, Any]:
    """Route ``opt`` demanding a scope of the signed-in token (a 403 page otherwise)."""
    return {"ui_scope": scope}


PUBLIC: dict[str, Any] = {"ui_public": True}


async def signed_in(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Admit a live session holding the route's scope; rate-limited like the token's API use."""
    if handler.opt.get("ui_public"):
        return
    state = state_of(connection.app.state)
    session_id = connection.cookies.get(COOKIE)
    session = (
        await find_session(state.pool, state.admin_token_hash, session_id) if session_id else None
    )
    if session is None:
        raise NotSignedIn
    principal = session.principal
    await enforce_rate_limit(connection, principal.actor, principal.rate_limits)
    scope = handler.opt.get("ui_scope")
    if scope is not None and not session.can(scope):
        raise PermissionDeniedException(f"this needs the {scope!r} scope, which your token lacks")
    connection.scope["state"]["ui_session"] = session


def session_of(connection: ASGIConnection[Any, Any, Any, Any]) -> UiSession:
    """The session the guard admitted."""
    session: UiSession = connection.scope["state"]["ui_session"]
    return session


def caller_of(request: Request[Any, Any, Any], nonce: str | None = None) -> Caller:
    """The signed-in visitor as an operation's caller. ``nonce`` (one per rendered form) makes
    a double submission a repeat of the first, as an Idempotency-Key does on the API."""
    fingerprint = hashlib.sha256(f"{request.method} {request.url.path}".encode()).hexdigest()
    return Caller(
        principal=session_of(request).principal,
        correlation_id=request.scope["state"]["correlation_id"],
        idempotency_key=f"ui:{nonce}" if nonce else None,
        fingerprint=fingerprint,
    )


def csrf_matches(session: UiSession, token: str | None) -> bool:
    """True if ``token`` is the session's CSRF token (compared in constant time)."""
    return token is not None and hmac.compare_digest(token.encode(), session.csrf.encode())
