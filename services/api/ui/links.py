"""URLs with query strings, leaving out empty values."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode


def link(path: str, params: Mapping[str, object]) -> str:
    """``path?k=v...`` with only the parameters that have a value."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{path}?{query}" if query else path
