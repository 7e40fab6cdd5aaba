"""The ownership read model: which stream belongs to whom, and which events each agent may
read (``stream_owner`` and ``event_owner``; the rules are domain/ownership.py).

``event_owner`` holds one row per event an agent owns, keyed (owner, position): an agent's
reads of the log are one range scan of its own rows, so a page is always full and a position
cursor stays valid however few of the log's events are its own. The admin reads the log
itself, so events the admin owns get no row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

from domain import ownership as rules
from domain.envelope import Envelope
from domain.events import EVENT_TYPES, Event, event_type
from projections.base import Connection, ProjectionSet

_OPEN = "INSERT INTO stream_owner (stream, owner) VALUES ($1, $2) ON CONFLICT DO NOTHING"
_INHERIT = """
INSERT INTO stream_owner (stream, owner)
SELECT $1, owner FROM stream_owner WHERE stream = $2
ON CONFLICT DO NOTHING
"""
_OWN = "INSERT INTO event_owner (position, owner) VALUES ($1, $2) ON CONFLICT DO NOTHING"
# Every other event belongs to its stream's owner.
_OWN_AS_STREAM = """
INSERT INTO event_owner (position, owner)
SELECT $1::bigint, owner FROM stream_owner WHERE stream = $2 AND owner <> 'admin'
ON CONFLICT DO NOTHING
"""


# The same statements for many events at once: each parameter an array, one element per event.
# Each looks its stream's owner up by key (LIMIT 1 keeps the lookup a per-row index probe:
# planned as a join, the planner's guess of 100 rows chose to scan all of stream_owner, three
# times slower than one statement per event).
_MANY = {
    _OPEN: """
INSERT INTO stream_owner (stream, owner) SELECT * FROM unnest($1::text[], $2::text[])
ON CONFLICT DO NOTHING
""",
    _INHERIT: """
INSERT INTO stream_owner (stream, owner)
SELECT u.stream, s.owner FROM unnest($1::text[], $2::text[]) AS u(stream, parent)
CROSS JOIN LATERAL (SELECT owner FROM stream_owner WHERE stream = u.parent LIMIT 1) AS s
ON CONFLICT DO NOTHING
""",
    _OWN: """
INSERT INTO event_owner (position, owner) SELECT * FROM unnest($1::bigint[], $2::text[])
ON CONFLICT DO NOTHING
""",
    _OWN_AS_STREAM: """
INSERT INTO event_owner (position, owner)
SELECT u.position, s.owner FROM unnest($1::bigint[], $2::text[]) AS u(position, stream)
CROSS JOIN LATERAL (SELECT owner FROM stream_owner WHERE stream = u.stream LIMIT 1) AS s
WHERE s.owner <> 'admin'
ON CONFLICT DO NOTHING
""",
}
# Which argument names the stream whose stream_owner row a statement writes, or reads.
_WRITES = {_OPEN: 0, _INHERIT: 0}
_READS = {_INHERIT: 1, _OWN_AS_STREAM: 1}
Statement: TypeAlias = tuple[str, tuple[Any, ...]]


def _own(position: int, owner: str) -> list[Statement]:
    return [] if owner == rules.ADMIN else [(_OWN, (position, owner))]


class OwnershipProjection:
    """Maintains `stream_owner` and `event_owner`."""

    name: str = "ownership"
    tables: tuple[str, ...] = ("stream_owner", "event_owner")
    handles: frozenset[str] = frozenset(EVENT_TYPES)

    def plan(self, envelope: Envelope) -> list[Statement]:
        """Open the stream's ownership if this event opens it, then file the event."""
        event, actor, position = envelope.event, envelope.meta.actor, envelope.position
        owner = rules.own_owner(event, actor)
        if owner is not None:
            return _own(position, owner)
        opener = rules.opened_by(event, actor)
        if opener is not None:
            return [(_OPEN, (envelope.stream, opener)), *_own(position, opener)]
        parent = rules.inherited_from(event)
        if parent is not None:
            return [(_INHERIT, (envelope.stream, parent)), (_OWN_AS_STREAM, (position, parent))]
        return [(_OWN_AS_STREAM, (position, envelope.stream))]

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """File one event."""
        await self.apply_batch(conn, [envelope])

    async def apply_batch(self, conn: Connection, envelopes: Sequence[Envelope]) -> None:
        """File a batch: each kind of statement once per segment (services/store appends a
        batch of run results, a lease, a group of commands), with the same rows as one
        statement per event in order would give."""
        for segment in _segments([self.plan(e) for e in envelopes]):
            grouped: dict[str, list[tuple[Any, ...]]] = {}
            for sql, args in segment:
                grouped.setdefault(sql, []).append(args)
            for sql, rows in grouped.items():
                if len(rows) == 1:
                    await conn.execute(sql, *rows[0])
                else:
                    columns = (list(column) for column in zip(*rows, strict=True))
                    await conn.execute(_MANY[sql], *columns)


def owners_at_insert(
    projections: ProjectionSet, events: Sequence[tuple[Event, str]]
) -> list[str | None] | None:
    """Each (event, actor)'s ``event_owner`` row (its owner, or None for none), if the insert
    statement can file them itself: ownership is the only projection of the set that handles
    these events, and each one's owner is decided by the event and its actor alone, with no
    model read (an external event's publisher). None if any event needs more.

    What ``plan`` gives once positions exist, decided before: the store then records such a
    group in one statement, its own transaction (services/store/group_insert.py's
    ``insert_alone``).
    """
    owners: list[str | None] = []
    for event, actor in events:
        handlers = projections.handlers(event_type(event))
        if len(handlers) != 1 or not isinstance(handlers[0], OwnershipProjection):
            return None
        owner = rules.own_owner(event, actor)
        if owner is None:
            return None
        owners.append(None if owner == rules.ADMIN else owner)
    return owners


def _segments(plans: Sequence[list[Statement]]) -> list[list[Statement]]:
    """The events' statements, in order, cut where running a segment's statements grouped by
    kind could differ from running them one by one: before an event that writes a stream's
    owner row a segment already wrote or read, or reads one it wrote."""
    segments: list[list[Statement]] = [[]]
    written: set[str] = set()
    read: set[str] = set()
    for plan in plans:
        writes = {args[_WRITES[sql]] for sql, args in plan if sql in _WRITES}
        reads = {args[_READS[sql]] for sql, args in plan if sql in _READS}
        if writes & (written | read) or reads & written:
            segments.append([])
            written, read = set(), set()
        segments[-1].extend(plan)
        written |= writes
        read |= reads
    return segments
