"""Posted forms: the CSRF check every dashboard POST passes, and typed fields named on refusal."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from litestar import Request
from litestar.exceptions import PermissionDeniedException

from services.api.ui.access import csrf_matches, session_of
from services.application.errors import Invalid, invalid
from services.application.inputs import instant_reason, representable

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_NONCE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def refuse(field: str, reason: str) -> Invalid:
    """A 422 naming the field."""
    return invalid(field, reason)


async def posted(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The form's text fields, once its CSRF token is the session's (403 otherwise)."""
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    token = fields.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not csrf_matches(session_of(request), token):
        raise PermissionDeniedException(
            "the form's CSRF token is missing or out of date; reload the page and try again"
        )
    return fields


def nonce(fields: dict[str, str]) -> str | None:
    """The form's one-time id (a repeat submission replays the first), if well-formed."""
    value = fields.get("nonce") or None
    if value is not None and not _NONCE.match(value):
        raise refuse("nonce", "is not a form id this page gave out")
    return value


def whole_number(fields: dict[str, str], name: str, low: int, high: int) -> int:
    """The field as an integer in [low, high]."""
    text = fields.get(name, "").strip()
    try:
        value = int(text)
    except ValueError:
        raise refuse(name, "must be a whole number") from None
    if not low <= value <= high:
        raise refuse(name, f"must be between {low} and {high}")
    return value


def optional_text(fields: dict[str, str], name: str, limit: int) -> str | None:
    """The field stripped, or None if empty; at most ``limit`` characters."""
    text = fields.get(name, "").strip()
    if len(text) > limit:
        raise refuse(name, f"must be at most {limit} characters")
    return text or None


def instant(value: str | None, name: str) -> datetime | None:
    """An ISO-8601 instant; one without an offset is read as UTC (as the forms say)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        reason = "must be a date and time like 2026-03-29T08:30 (UTC) or with an offset"
        raise refuse(name, reason) from None
    found = parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=UTC)
    if not representable(found):
        raise refuse(name, instant_reason(found))
    return found
