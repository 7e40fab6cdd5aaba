"""HTTP requests as operation calls: the caller, the backend, and the answer as a response."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Annotated, Any

from litestar import Request, Response
from litestar.di import NamedDependency, Provide
from litestar.params import HeaderParameter

from services.api.auth import principal_of
from services.api.state import AppState
from services.application.context import (
    IDEMPOTENCY_KEY_MAX,
    IDEMPOTENCY_KEY_PATTERN,
    VERSION_PATTERN,
    Answer,
    Backend,
    Caller,
    OperationResult,
)

# Headers a route takes only where it honours them, so the OpenAPI document lists them there
# and Litestar refuses a malformed one with a 422 naming it.
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="1 to 200 printable ASCII characters. A repeat with this key replays the "
        "first answer and changes nothing; the same key with a different request is a 422.",
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


# The callers below take ``backend`` though they do not use it: a route asking for a caller and
# the backend then has them resolved one after the other. Asked for side by side, Litestar
# resolves them in an anyio task group, two tasks per request: 6-8% of the API's CPU under
# `bench api` at 200/s, for providers that never wait.


async def provide_caller(
    request: Request[Any, Any, Any], backend: NamedDependency[Backend]
) -> Caller:
    """A read's caller: the principal the route's guard admitted, and the correlation id."""
    return caller_of(request)


async def provide_command(
    request: Request[Any, Any, Any],
    backend: NamedDependency[Backend],
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Caller:
    """A task command's caller: also its idempotency key, precondition and content."""
    body = await request.body()
    return caller_of(request, body, idempotency_key=idempotency_key, if_match=if_match)


async def provide_steering(
    request: Request[Any, Any, Any],
    backend: NamedDependency[Backend],
    idempotency_key: IdempotencyKey = None,
) -> Caller:
    """A run command's caller: a repeated key replays the first decision on the run,
    whatever the body said."""
    return dataclasses.replace(
        caller_of(request, idempotency_key=idempotency_key),
        fingerprint=f"{request.method} {request.url.path}",
    )


def provide_backend(state: AppState) -> Backend:
    """The store, announcer and limits the app opened."""
    return state.backend


# What a route may ask for by name (``caller``, ``command``, ``steering``, ``backend``); only
# the header parameters of what a route asks for appear in its OpenAPI operation.
DEPENDENCIES = {
    "caller": Provide(provide_caller),
    "command": Provide(provide_command),
    "steering": Provide(provide_steering),
    "backend": Provide(provide_backend, sync_to_thread=False),
}

# Each answer's HTTP status, in one place.
STATUS_OF = {Answer.DONE: 200, Answer.CREATED: 201, Answer.ACCEPTED: 202, Answer.DELETED: 204}


def respond(outcome: OperationResult) -> Response[Any]:
    """The operation's answer as an HTTP response."""
    return Response(outcome.body, status_code=STATUS_OF[outcome.answer])
