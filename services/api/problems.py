"""RFC 9457 problem+json responses for every error the API can give."""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from domain.errors import RuleViolation
from domain.schedules.preview import RENAMED
from services.application.context import IDEMPOTENCY_KEY_PATTERN
from services.application.errors import (
    ApplicationError,
    FieldError,
    refusal_of,
)
from services.application.inputs import fields_at, path_segments
from services.problems.document import PROBLEM_JSON, Problem, field_name, status_of
from services.store.errors import IdempotencyKeyReused, UnstorableText, VersionConflict

_log = structlog.get_logger("ordinaut.api")


def problem_response(
    request: Request[Any, Any, Any],
    status: int,
    title: str,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Problem]:
    """A problem+json response for ``request``."""
    problem = Problem(
        type=f"urn:ordinaut:problem:{title.lower().replace(' ', '-')}",
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        correlation_id=request.scope.get("state", {}).get("correlation_id"),
        errors=errors,
    )
    return Response(problem, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _renamed(request: Request[Any, Any, Any], error: FieldError) -> FieldError:
    """An unknown field an earlier release spelled differently (``kind``, ``expr``, ``tz``),
    refused naming the new spelling wherever the object at that place has it: task bodies,
    patches, dry runs, previews, agent limits."""
    parent, _, old = error.field.rpartition(".")
    new = RENAMED.get(old)
    body = request.route_handler.parsed_data_field
    if new is None or body is None or "unknown field" not in error.reason:
        return error
    if new not in fields_at(body.annotation, path_segments(parent)):
        return error
    return FieldError(error.field, f"renamed {new}")


def _wire_name(request: Request[Any, Any, Any], key: str) -> str:
    """A parameter as the client spelled it (``If-Match``), not as the handler's argument
    (``if_match``): Litestar reports the argument."""
    handler = request.route_handler
    # The handler's own parameters, then those of the dependencies it takes (services/api/calls).
    signatures = [handler.parsed_fn_signature] + [
        provider.parsed_fn_signature for provider in handler.resolve_dependencies().values()
    ]
    for signature in signatures:
        parameter = signature.parameters.get(key)
        name = getattr(getattr(parameter, "kwarg_definition", None), "name", None)
        if isinstance(name, str) and name:
            return name
    return key


def _field_errors(request: Request[Any, Any, Any], exc: ValidationException) -> list[FieldError]:
    found: list[FieldError] = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            key = str(item.get("key") or item.get("source") or "body")
            if item.get("source") in ("header", "query", "cookie"):
                key = _wire_name(request, key)
            error = FieldError(*field_name(key, str(item.get("message", "is invalid"))))
            found.append(_plainly(_renamed(request, error)))
    return found


# Patterns whose "Expected `str` matching regex ..." says less than a sentence would.
_PATTERN_REASONS = {
    IDEMPOTENCY_KEY_PATTERN: "must be printable ASCII characters (U+0020 to U+007E)",
}


def _plainly(error: FieldError) -> FieldError:
    for pattern, reason in _PATTERN_REASONS.items():
        if error.reason.endswith(f"matching regex {pattern!r}"):
            return FieldError(error.field, reason)
    return error


def validation_problem(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """Malformed JSON is a 400; a well-formed body or query that breaks the schema is a 422."""
    errors = _field_errors(request, exc)
    if any(e.reason == "'data'" for e in errors):  # Litestar's way of saying "no body at all"
        return problem_response(request, 400, "Malformed request", "a JSON body is required")
    malformed = (
        any("malformed" in e.reason.lower() or "invalid json" in e.reason.lower() for e in errors)
        or "malformed" in str(exc.detail).lower()
    )
    if malformed:
        return problem_response(request, 400, "Malformed request", "the body is not valid JSON")
    if not errors:
        errors = [FieldError("body", str(exc.detail))]
    detail = "; ".join(f"{e.field}: {e.reason}" for e in errors)
    return problem_response(request, 422, "Invalid request", detail, errors=errors)


def http_problem(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Litestar's own HTTP errors (401, 404, 405, 413 ...) as problems."""
    title = _TITLES.get(exc.status_code, "Request refused")
    headers = dict(exc.headers or {})
    return problem_response(request, exc.status_code, title, str(exc.detail), headers=headers)


def refusal_problem(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A use case's refusal, or one from the layers below it (a domain rule, a stale version,
    a value PostgreSQL will not store); anything else is an internal error."""
    refusal = refusal_of(exc)
    if refusal is None:
        return internal_problem(request, exc)
    status = status_of(refusal)
    return problem_response(request, status, refusal.title, refusal.detail, errors=refusal.errors)


def nesting_problem(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    """A body nested so deeply that decoding it exhausted the stack."""
    return problem_response(request, 400, "Malformed request", "the body is nested too deeply")


def internal_problem(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Anything unexpected: logged in full with the correlation id, answered without internals."""
    _log.exception(
        "unhandled error",
        path=request.url.path,
        method=request.method,
        correlation_id=request.scope.get("state", {}).get("correlation_id"),
    )
    return problem_response(
        request, 500, "Internal error", "an unexpected error occurred; quote the correlation id"
    )


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    429: "Too many requests",
    503: "Service unavailable",
}

EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    ValidationException: validation_problem,
    HTTPException: http_problem,
    ApplicationError: refusal_problem,
    RuleViolation: refusal_problem,
    VersionConflict: refusal_problem,
    IdempotencyKeyReused: refusal_problem,
    UnstorableText: refusal_problem,
    asyncpg.DataError: refusal_problem,
    asyncpg.UniqueViolationError: refusal_problem,
    RecursionError: nesting_problem,
    Exception: internal_problem,
}
