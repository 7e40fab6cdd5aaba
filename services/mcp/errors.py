"""Every refusal an operation can raise, as the same problem document the API answers with."""

from __future__ import annotations

import asyncpg
import msgspec
import structlog
from litestar.exceptions import HTTPException

from domain.errors import RuleViolation
from services.api.problems import ApiError, FieldError, Problem, field_name
from services.store.errors import IdempotencyKeyReused, UnstorableText, VersionConflict

_log = structlog.get_logger("ordinaut.mcp")
_TITLES = {
    400: "Bad request",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal error",
}


def _problem(
    status: int, title: str, detail: str, errors: list[FieldError] | None = None
) -> Problem:
    kind = f"urn:ordinaut:problem:{title.lower().replace(' ', '-')}"
    return Problem(type=kind, title=title, status=status, detail=detail, errors=errors)


def invalid_input(exc: msgspec.ValidationError | ValueError) -> Problem:
    """Arguments that break the tool's schema: a 422 naming the field, as the API does."""
    field, reason = field_name("body", str(exc))
    field = "arguments" if field == "body" else field
    return _problem(422, "Invalid request", f"{field}: {reason}", [FieldError(field, reason)])


def problem_of(exc: Exception, tool: str, correlation_id: str) -> Problem:
    """The problem for ``exc``; anything unexpected is logged and answered without internals."""
    if isinstance(exc, ApiError):
        return _problem(exc.status, exc.title, exc.detail, exc.errors)
    if isinstance(exc, RuleViolation):
        title = {409: "Conflict", 403: "Forbidden"}.get(exc.status, "Invalid request")
        return _problem(exc.status, title, str(exc), [FieldError(exc.field, exc.reason)])
    if isinstance(exc, VersionConflict):
        return _problem(409, "Version conflict", str(exc))
    if isinstance(exc, IdempotencyKeyReused):
        return _problem(422, "Idempotency key reused", str(exc))
    if isinstance(exc, msgspec.ValidationError):
        return invalid_input(exc)
    if isinstance(exc, UnstorableText):
        return _problem(422, "Invalid request", str(exc))
    if isinstance(exc, asyncpg.DataError):
        return _problem(422, "Invalid request", "a value in the request is not valid")
    if isinstance(exc, asyncpg.UniqueViolationError) and exc.constraint_name == "task_owner_key":
        reason = "another of your tasks already has this key"
        return _problem(409, "Conflict", f"key: {reason}", [FieldError("key", reason)])
    if isinstance(exc, HTTPException):
        title = _TITLES.get(exc.status_code, "Request refused")
        return _problem(exc.status_code, title, str(exc.detail))
    _log.exception("unhandled error in an MCP tool", tool=tool, correlation_id=correlation_id)
    return _problem(500, "Internal error", "an unexpected error occurred; quote the correlation id")
