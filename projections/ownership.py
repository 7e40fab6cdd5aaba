"""The ownership read model: which stream belongs to whom, and which events each agent may
read (``stream_owner`` and ``event_owner``; the rules are domain/ownership.py).

``event_owner`` holds one row per event an agent owns, keyed (owner, position): an agent's
reads of the log are one range scan of its own rows, so a page is always full and a position
cursor stays valid however few of the log's events are its own. The admin reads the log
itself, so events the admin owns get no row.
"""

from __future__ import annotations

from collections.abc import Mapping

from domain import ownership as rules
from domain.envelope import Envelope
from domain.events import EVENT_TYPES
from projections.base import Connection, Statement, run_plan

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


def _own(position: int, owner: str) -> list[Statement]:
    return [] if owner == rules.ADMIN else [(_OWN, (position, owner))]


class OwnershipProjection:
    """Maintains `stream_owner` and `event_owner`."""

    name: str = "ownership"
    tables: tuple[str, ...] = ("stream_owner", "event_owner")
    handles: frozenset[str] = frozenset(EVENT_TYPES)
    many: Mapping[str, str] = _MANY

    def plan(self, envelope: Envelope) -> list[Statement]:
        """Open the stream's ownership if this event opens it, then file the event.

        A wave's statements run grouped by kind, not event by event, so an event never
        reads an ownership row opened in its own wave: an opener names its owner directly,
        and a condition reads its task's stream, opened by an earlier command.
        """
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
        """The unbatched path: run this event's plan."""
        await run_plan(conn, self.plan(envelope))
