"""HTTP requests as operation calls: the caller, the backend, and the answer as a response."""

from __future__ import annotations

import hashlib
from typing import Any

from litestar import Request, Response
from litestar.datastructures import State

from domain.limits import WorkLimits
from services.api.auth import principal_of
from services.api.operations.context import Backend, Caller, Outcome
from services.api.problems import ApiError, FieldError


def backend_of(state: State) -> Backend:
    """The store and announcer the app opened in its lifespan."""
    return Backend(
        state.pool,
        state.projections,
        state.get("announcer"),
        state.get("shell_allow", ()),
        state.get("work_limits", WorkLimits()),
    )


IDEMPOTENCY_KEY_MAX = 255


def _idempotency_key(request: Request[Any, Any, Any]) -> str | None:
    """The Idempotency-Key header; a key longer than 255 characters is refused (422)."""
    key = request.headers.get("idempotency-key")
    if key is not None and len(key) > IDEMPOTENCY_KEY_MAX:
        reason = f"must be at most {IDEMPOTENCY_KEY_MAX} characters"
        raise ApiError(422, "Invalid request", f"Idempotency-Key: {reason}",
                       [FieldError("Idempotency-Key", reason)])  # fmt: skip
    return key


def caller_of(request: Request[Any, Any, Any], body: bytes = b"") -> Caller:
    """The request as an operation's caller (its key, precondition and content fingerprint)."""
    fingerprint = f"{request.method} {request.url.path}\n".encode() + body
    return Caller(
        principal=principal_of(request),
        correlation_id=request.scope["state"]["correlation_id"],
        idempotency_key=_idempotency_key(request),
        fingerprint=hashlib.sha256(fingerprint).hexdigest(),
        if_match=request.headers.get("if-match"),
    )


def respond(outcome: Outcome) -> Response[Any]:
    """The operation's answer as an HTTP response."""
    return Response(outcome.body, status_code=outcome.status)
