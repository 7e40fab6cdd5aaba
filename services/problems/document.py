"""The RFC 9457 problem document the API and MCP both answer a refusal with, and the field a
validation message names: one shape for every adapter, so a client reads both alike."""

from __future__ import annotations

import re

import msgspec

from services.application.errors import (
    ApplicationError,
    Conflict,
    FieldError,
    Forbidden,
    Invalid,
    NotFound,
    Unavailable,
    UpstreamFailed,
)

PROBLEM_JSON = "application/problem+json"

# Each kind of refusal's status, in one place for both adapters (a subclass not listed takes its
# parent's): the HTTP answer's status, and the MCP problem's, so a client reads both alike.
STATUS_OF: dict[type[ApplicationError], int] = {
    ApplicationError: 400,
    Invalid: 422,
    NotFound: 404,
    Conflict: 409,
    Forbidden: 403,
    Unavailable: 503,
    UpstreamFailed: 502,
}


def status_of(exc: ApplicationError) -> int:
    """The status of a refusal: its own kind's, else the nearest listed parent's."""
    return next(STATUS_OF[kind] for kind in type(exc).__mro__ if kind in STATUS_OF)


class Problem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    correlation_id: str | None = None
    errors: list[FieldError] | None = None


_NAMED_FIELD = re.compile(r"(?:unknown|missing required) field `([^`]+)`")
_AT_PATH = re.compile(r" - at `\$\.?([^`]*)`$")


def field_name(key: str, message: str) -> tuple[str, str]:
    """The most precise field name msgspec's message allows, and the message without its path."""
    path = _AT_PATH.search(message)
    prefix = path.group(1) if path else ("" if key in ("data", "body") else key)
    reason = _AT_PATH.sub("", message)
    named = _NAMED_FIELD.search(reason)
    parts = [p for p in (prefix, named.group(1) if named else "") if p]
    return ".".join(parts) or key or "body", reason
