"""HTTP requests as operation calls: the caller, the backend, and the answer as a response."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from litestar import Request, Response
from litestar.datastructures import State
from litestar.params import HeaderParameter

from domain.limits import WorkLimits
from services.api.auth import principal_of
from services.application.context import VERSION_PATTERN, Answer, Backend, Caller, Outcome

# Headers a route takes only where it honours them, so the OpenAPI document lists them there
# and Litestar refuses a malformed one with a 422 naming it.
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="A repeat with this key replays the first answer and changes nothing; "
        "the same key with a different request is a 422.",
    ),
]
IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        pattern=VERSION_PATTERN,
        description='The task version the change expects (its ETag, `"7"`), or `*`; '
        "a task at another version answers 409.",
    ),
]


def backend_of(state: State) -> Backend:
    """The store and announcer the app opened in its lifespan."""
    return Backend(
        state.pool,
        state.projections,
        state.get("announcer"),
        state.get("shell_allow", ()),
        state.get("work_limits", WorkLimits()),
    )


def caller_of(
    request: Request[Any, Any, Any],
    body: bytes = b"",
    *,
    idempotency_key: str | None = None,
    if_match: str | None = None,
) -> Caller:
    """The request as an operation's caller (its key, precondition and content fingerprint).

    The key and precondition are the route's declared ``IdempotencyKey`` and ``IfMatch``
    parameters, so a route honours exactly the headers its document lists."""
    fingerprint = f"{request.method} {request.url.path}\n".encode() + body
    return Caller(
        principal=principal_of(request),
        correlation_id=request.scope["state"]["correlation_id"],
        idempotency_key=idempotency_key,
        fingerprint=hashlib.sha256(fingerprint).hexdigest(),
        if_match=if_match,
    )


# Each answer's HTTP status, in one place.
STATUS_OF = {Answer.DONE: 200, Answer.CREATED: 201, Answer.ACCEPTED: 202, Answer.DELETED: 204}


def respond(outcome: Outcome) -> Response[Any]:
    """The operation's answer as an HTTP response."""
    return Response(outcome.body, status_code=STATUS_OF[outcome.answer])
