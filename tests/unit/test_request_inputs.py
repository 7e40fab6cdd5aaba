"""The checks every adapter makes before a use case runs name the exact field at fault."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

import msgspec
import pytest

from services.application.inputs import (
    NUL_ALLOWED,
    fields_at,
    instant_errors,
    nul_errors,
    path_segments,
)
from services.store.order import ID_BASE, MAX_POSITION, MAX_TXID, Cursor


class Window(msgspec.Struct):
    start: datetime
    label: str = ""


class Body(msgspec.Struct):
    title: str
    sealed: Annotated[str, msgspec.Meta(extra=NUL_ALLOWED)] = ""
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    windows: list[Window] = msgspec.field(default_factory=list)
    at: datetime | None = None


def test_nul_is_named_by_its_path_except_where_the_type_allows_it() -> None:
    body = {
        "title": "a\x00",
        "sealed": "\x00 is fine here",
        "payload": {"steps": [{"with": {"t": "x\x00"}}], "k\x00": 1},
        "windows": [{"start": "2026-01-01T00:00:00Z", "label": "\x00"}],
    }
    found = {error.field: error.reason for error in nul_errors(body, Body)}
    assert set(found) == {"title", "payload.steps[0].with.t", "payload", "windows[0].label"}
    assert found["payload"].startswith("keys ")


def test_instants_out_of_range_are_named_by_their_path() -> None:
    east = timezone(timedelta(hours=14))
    body = Body(
        title="t",
        windows=[Window(datetime(2026, 1, 1, tzinfo=UTC)), Window(datetime(1, 1, 1, tzinfo=east))],
        at=datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-14))),
        payload={"at": "0001-01-01T00:00:00+14:00"},  # text, not a date-time: not checked
    )
    assert [error.field for error in instant_errors(body)] == ["windows[1].start", "at"]


def test_the_fields_at_a_path_follow_unions_lists_and_structs() -> None:
    assert fields_at(Body | None, []) == {"title", "sealed", "payload", "windows", "at"}
    assert fields_at(Body, path_segments("windows[3]")) == {"start", "label"}
    assert fields_at(Body, path_segments("payload.x")) == set()


@pytest.mark.parametrize(
    "text",
    [
        f"{MAX_POSITION + 1}-0",
        f"{ID_BASE + MAX_TXID + 1}-1",
        f"{ID_BASE + 1}-{MAX_POSITION + 1}",
    ],
)
def test_a_cursor_past_the_columns_ranges_names_no_place_in_the_log(text: str) -> None:
    with pytest.raises(ValueError, match="not a cursor of this log"):
        Cursor.from_entry_id(text)
    assert Cursor.from_entry_id(f"{MAX_POSITION}-0") == Cursor(0, MAX_POSITION)
