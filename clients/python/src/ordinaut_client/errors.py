"""problem+json answers as typed exceptions, one class per status the API documents."""

from __future__ import annotations

import httpx

from ordinaut_client.models import FieldError, Problem


class OrdinautError(Exception):
    """Any refusal or failure the client reports."""


class Unreachable(OrdinautError):
    """The API could not be reached: connecting, sending or reading the answer failed or timed
    out (after the retries the request allows). ``__cause__`` is httpx's error."""

    def __init__(self, method: str, url: str, exc: httpx.TransportError) -> None:
        reason = str(exc) or type(exc).__name__
        super().__init__(f"{method} {url}: the Ordinaut API is unreachable: {reason}")
        self.method, self.url = method, url


class ApiError(OrdinautError):
    """The API answered with a problem (RFC 9457): ``problem`` has every documented member."""

    status: int = 0

    def __init__(self, problem: Problem, response: httpx.Response | None = None) -> None:
        super().__init__(f"{problem.status} {problem.title}: {problem.detail}")
        self.problem, self.response = problem, response

    @property
    def errors(self) -> list[FieldError]:
        """The fields the server named, and why each was refused (empty when none)."""
        return list(self.problem.errors or [])

    @property
    def fields(self) -> list[str]:
        return [error.field for error in self.errors]


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    """The resource's state or version refuses the change (e.g. a stale If-Match)."""

    status = 409


class PayloadTooLarge(ApiError):
    status = 413


class Invalid(ApiError):
    """Invalid input: ``errors`` names each field and why."""

    status = 422


class RateLimited(ApiError):
    """Over the caller's rate limit; ``retry_after`` is the server's Retry-After, in seconds."""

    status = 429

    @property
    def retry_after(self) -> float | None:
        return retry_after(self.response)


class Unavailable(ApiError):
    status = 503

    @property
    def retry_after(self) -> float | None:
        return retry_after(self.response)


_BY_STATUS: dict[int, type[ApiError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        Invalid,
        RateLimited,
        Unavailable,
    )
}


def retry_after(response: httpx.Response | None) -> float | None:
    """Retry-After in seconds (only the delay form: the API never sends a date)."""
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_for(response: httpx.Response) -> ApiError:
    """The typed exception for an error response (a problem, or a stand-in for a bare one)."""
    problem: Problem
    try:
        problem = Problem.model_validate(response.json())
    except ValueError:
        problem = Problem(
            type="about:blank",
            title=response.reason_phrase or "Error",
            status=response.status_code,
            detail=response.text[:500],
        )
    return _BY_STATUS.get(response.status_code, ApiError)(problem, response)


class IngestRefused(OrdinautError):
    """An ingest entry the consumer would dead-letter; ``reason`` is what it would record
    (``"topic: missing field"``, ``"payload: must be a JSON object, not list"``...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = reason.split(":", 1)[0]
