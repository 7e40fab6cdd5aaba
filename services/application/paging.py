"""Paging, the same on every collection: ``{"items": [...], "next": cursor | null}``.

``limit`` is 1 to MAX_LIMIT (default DEFAULT_LIMIT); ``next`` is null on the last page, and is
otherwise passed back as ``cursor`` for the next one. Cursors are opaque: a (timestamp, id)
position for tasks and runs, a log position for events, so pages stay stable.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from services.application.errors import Invalid, invalid
from services.application.inputs import NUL, representable

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def encode_position(at: datetime, item_id: str) -> str:
    """The cursor after the item at ``(at, item_id)``."""
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{item_id}".encode()).decode()


def decode_position(cursor: str) -> tuple[datetime, str]:
    """``(timestamp, id)`` from a cursor; a forged one is refused naming `cursor`."""
    try:
        at, _, item_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        position = datetime.fromisoformat(at), item_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _forged() from None
    if not representable(position[0]) or NUL in item_id:  # forged: no page ends there
        raise _forged()
    return position


def _forged() -> Invalid:
    return invalid("cursor", "is not a cursor this API returned")
