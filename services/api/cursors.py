"""Opaque page cursors: a (timestamp, id) position in a list, so pages stay stable."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from services.api.problems import ApiError, FieldError


def encode_position(at: datetime, item_id: str) -> str:
    """The cursor after the item at ``(at, item_id)``."""
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{item_id}".encode()).decode()


def decode_position(cursor: str) -> tuple[datetime, str]:
    """``(timestamp, id)`` from a cursor; a forged one is a 422 naming `cursor`."""
    try:
        at, _, item_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(at), item_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        reason = "is not a cursor this API returned"
        raise ApiError(
            422, "Invalid request", f"cursor: {reason}", [FieldError("cursor", reason)]
        ) from None
