"""What the async and sync clients share: request parts, the retry rule, operation metadata."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from ordinaut_client.errors import retry_after
from ordinaut_client.models import TaskView

F = TypeVar("F", bound=Callable[..., Any])
Body = BaseModel | Mapping[str, Any]
# A task version for If-Match: the TaskView read, its version, or an ETag as the server sent it.
Version = TaskView | int | str


@dataclass(frozen=True)
class Operation:
    """The route a client method calls; the contract test checks these against the document."""

    method: str
    path: str
    body: type[BaseModel] | None = None
    response: Any = None


def operation(
    method: str, path: str, *, body: type[BaseModel] | None = None, response: Any = None
) -> Callable[[F], F]:
    """Mark a client method as the caller of ``method path``."""

    def mark(function: F) -> F:
        function.__ordinaut_operation__ = Operation(method, path, body, response)  # type: ignore[attr-defined]
        return function

    return mark


def segment(value: str) -> str:
    """An id as one path segment (tool addresses hold dots and slashes are refused)."""
    return quote(value, safe="")


def payload(body: Body | None) -> Any:
    """A body as JSON: a model without the fields left unset (the server's defaults apply)."""
    if body is None:
        return None
    if isinstance(body, BaseModel):
        return body.model_dump(mode="json", exclude_unset=True)
    return dict(body)


def params(**values: Any) -> dict[str, Any]:
    """Query parameters without the ones left None."""
    return {key: value for key, value in values.items() if value is not None}


def new_idempotency_key() -> str:
    """A fresh Idempotency-Key: the same one on every retry of one call makes the retry safe."""
    return str(uuid.uuid4())


def if_match_value(version: Version) -> str:
    """An If-Match header for a task version: ``"7"`` for 7, a TaskView's version, or as given."""
    if isinstance(version, TaskView):
        version = version.version
    if isinstance(version, int):
        return f'"{version}"'
    return version


def headers(idempotency_key: str | None = None, if_match: Version | None = None) -> dict[str, str]:
    found: dict[str, str] = {}
    if idempotency_key is not None:
        found["Idempotency-Key"] = idempotency_key
    if if_match is not None:
        found["If-Match"] = if_match_value(if_match)
    return found


@dataclass(frozen=True)
class Retry:
    """Retries only where repeating cannot do a thing twice: GETs, and writes carrying an
    Idempotency-Key; on 429, 503 and connection errors; ``attempts`` in all, waiting the
    server's Retry-After when it gives one (capped), else exponential backoff with jitter."""

    attempts: int = 3
    backoff: float = 0.2
    max_wait: float = 10.0

    def safe(self, request: httpx.Request) -> bool:
        return request.method in ("GET", "HEAD") or "Idempotency-Key" in request.headers

    def delay(
        self, request: httpx.Request, attempt: int, outcome: httpx.Response | Exception
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None: do not retry."""
        if attempt >= self.attempts or not self.safe(request):
            return None
        if isinstance(outcome, httpx.Response):
            if outcome.status_code not in (429, 503):
                return None
            told = retry_after(outcome)
            if told is not None:
                return min(told, self.max_wait)
        elif not isinstance(outcome, httpx.TransportError):
            return None
        wait = self.backoff * 2.0 ** (attempt - 1) * (1 + random.random())  # noqa: S311
        return min(wait, self.max_wait)


NO_RETRY = Retry(attempts=1)
