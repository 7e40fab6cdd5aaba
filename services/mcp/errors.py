"""Every refusal an operation can raise, as the same problem document the API answers with."""

from __future__ import annotations

import msgspec
import structlog
from litestar.exceptions import HTTPException

from services.application.errors import (
    FieldError,
    refusal_of,
)
from services.problems.document import Problem, field_name, status_of

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
    if isinstance(exc, msgspec.ValidationError):
        return invalid_input(exc)
    refusal = refusal_of(exc)
    if refusal is not None:
        return _problem(status_of(refusal), refusal.title, refusal.detail, refusal.errors)
    if isinstance(exc, HTTPException):
        title = _TITLES.get(exc.status_code, "Request refused")
        return _problem(exc.status_code, title, str(exc.detail))
    _log.exception("unhandled error in an MCP tool", tool=tool, correlation_id=correlation_id)
    return _problem(500, "Internal error", "an unexpected error occurred; quote the correlation id")
