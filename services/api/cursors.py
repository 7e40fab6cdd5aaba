"""The paging parameters every collection route takes (see services/application/paging.py)."""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

from services.application.paging import DEFAULT_LIMIT, MAX_LIMIT

__all__ = ["DEFAULT_LIMIT", "Cursor", "Limit"]

Limit = Annotated[
    int,
    QueryParameter(ge=1, le=MAX_LIMIT, description=f"Page size, 1 to {MAX_LIMIT}"),
]
Cursor = Annotated[
    str | None,
    QueryParameter(min_length=1, max_length=500, description="`next` of the previous page"),
]
