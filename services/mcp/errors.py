"""Every refusal an operation can raise, as the same problem document the API answers with."""

from __future__ import annotations

import math
from typing import Any

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


def invalid_field(field: str, reason: str) -> Problem:
    """A 422 naming one field, as the API answers it."""
    return _problem(422, "Invalid request", f"{field}: {reason}", [FieldError(field, reason)])


def invalid_input(exc: msgspec.ValidationError | ValueError) -> Problem:
    """Arguments that break the tool's schema: a 422 naming the field, as the API does."""
    field, reason = field_name("body", str(exc))
    return invalid_field("arguments" if field == "body" else field, reason)


def non_finite(arguments: dict[str, Any]) -> Problem | None:
    """A 422 naming the first argument that holds NaN or an infinity, if one does.

    JSON has no such numbers, but the parsers MCP messages go through (the SDK's, Python's)
    read `NaN`, `Infinity` and out-of-range literals such as `1e309` as floats, and encoding
    them again (msgspec, pydantic) writes null: the value would be stored changed, where the
    HTTP API refuses the same body. Every tool call's arguments pass here first.
    """
    pending: list[tuple[str, Any]] = [("", arguments)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return invalid_field(path, "not a finite number")
        if isinstance(value, dict):
            items = [(f"{path}.{key}" if path else str(key), item) for key, item in value.items()]
        elif isinstance(value, list):
            items = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
        else:
            continue
        pending.extend(reversed(items))  # popped in document order: the first one is named
    return None


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
