"""The event log browser: filters by stream, type, actor, correlation id, position and time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from litestar import Request, get
from litestar.params import FromQuery
from litestar.response import Template

from projections.base import Connection
from services.api.state import AppState
from services.api.ui.access import needs, session_of
from services.api.ui.forms import instant, refuse
from services.api.ui.links import link
from services.api.ui.render import page
from services.application.event_log import event_types
from services.store.audit import EventFilter, read_filtered
from services.store.errors import UnknownCursor
from services.store.order import START, Cursor
from services.store.read import parse_cursor, settle

PAGE_SIZE = 50
TEXT_MAX = 500
_meta = msgspec.json.Decoder(dict[str, Any])

Query = FromQuery[str | None]


@dataclass(frozen=True)
class EventRow:
    """One stored event as the browser shows it."""

    position: int
    stream: str
    version: int
    type: str
    recorded_at: datetime
    actor: str
    correlation_id: str
    data: msgspec.Raw
    meta: msgspec.Raw
    page: str | None  # the dashboard page of its task or run, if it has one


def _page_of(stream: str) -> str | None:
    kind, _, rest = stream.partition("-")
    return f"/ui/{kind}s/{rest}" if kind in ("task", "run") and rest else None


async def _cursor(conn: Connection, name: str, value: str | None) -> Cursor | None:
    if not value:
        return None
    try:
        return await parse_cursor(conn, value)
    except UnknownCursor:
        raise refuse(name, "must be an event's cursor (<n>-<n>) or position") from None


def _text(name: str, value: str | None) -> str | None:
    if value is not None and len(value) > TEXT_MAX:
        raise refuse(name, f"must be at most {TEXT_MAX} characters")
    return value or None


def _row(stored: Any) -> EventRow:
    meta = _meta.decode(bytes(stored.meta))
    return EventRow(
        stored.position,
        stored.stream,
        stored.version,
        stored.type,
        stored.recorded_at,
        str(meta.get("actor") or ""),
        str(meta.get("correlation_id") or ""),
        stored.data,
        stored.meta,
        _page_of(stored.stream),
    )


@get("/events", opt=needs("events:read"), name="ui_events")
async def event_list(
    request: Request[Any, Any, Any],
    state: AppState,
    stream: Query = None,
    type: Query = None,
    actor: Query = None,
    correlation_id: Query = None,
    after: Query = None,
    before: Query = None,
    since: Query = None,
    until: Query = None,
) -> Template:
    """Newest first (or, given ``after``, forward from that position); an agent sees only
    its own events, as on ``GET /events``."""
    chosen = {
        "stream": _text("stream", stream),
        "type": _text("type", type),
        "actor": _text("actor", actor),
        "correlation_id": _text("correlation_id", correlation_id),
        "since": since or "",
        "until": until or "",
    }
    forward = after is not None and after != ""
    async with state.pool.acquire() as conn:
        await settle(conn)  # what the user just did is on the page
        where = EventFilter(
            stream=chosen["stream"],
            types=event_types([type] if type else None),
            actor=chosen["actor"],
            correlation_id=chosen["correlation_id"],
            after=await _cursor(conn, "after", after) or START,
            before=await _cursor(conn, "before", before),
            since=instant(since, "since"),
            until=instant(until, "until"),
            reader=session_of(request).principal.reader,
        )
        found = await read_filtered(conn, where, PAGE_SIZE, newest_first=not forward)
    rows = [_row(event) for event in found]
    more = None
    if len(rows) == PAGE_SIZE:
        key = "after" if forward else "before"
        more = link("/ui/events", {**chosen, key: found[-1].cursor})
    here = link("/ui/events", {**chosen, "after": after, "before": before})
    return page(
        request,
        "events.html",
        rows=rows,
        chosen=chosen,
        next_url=more,
        forward=forward,
        live=not forward and not before,
        request_url=here,
        filter_url=lambda **more: link("/ui/events", {**chosen, **more}),
    )
