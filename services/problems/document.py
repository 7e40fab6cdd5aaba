"""The RFC 9457 problem document the API and MCP both answer a refusal with, and the field a
validation message names: one shape for every adapter, so a client reads both alike."""

from __future__ import annotations

import re

import msgspec

from services.application.errors import FieldError

PROBLEM_JSON = "application/problem+json"


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
