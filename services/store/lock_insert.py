"""Lock streams, check their versions and insert events into them, in one statement.

One round trip instead of two (lock and read the versions, then insert): the versions come
from ``ordinaut_lock_streams`` (migration 0030), which reads them after taking the locks, so
they are current whatever the statement's own snapshot, and each event's version is its
stream's locked version plus its rank among the statement's events of that stream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import asyncpg

from projections.base import Connection
from services.store.errors import StreamBusy, UnstorableText, VersionConflict

# $1 the distinct streams, sorted (the one lock order); $7 each one's expected version, or
# NULL for any; $8 each event's rank among the statement's events of its stream (counted by
# the caller: a window function here cost ~10 us an event more, pg_stat_statements). Nothing
# is inserted unless every expectation holds; positions are drawn in the events' order (ord).
# {owned}: where the ownership rows go, in the variant that files them too.
_TEMPLATE = """
WITH locked AS (
    SELECT stream, version FROM ordinaut_lock_streams($1::text[])
), stale AS (
    SELECT 1 FROM unnest($1::text[], $7::int[]) AS x(stream, expected)
    JOIN locked l USING (stream)
    WHERE x.expected IS NOT NULL AND x.expected <> l.version
), given AS (
    SELECT * FROM unnest($2::text[], $3::text[], $4::jsonb[], $5::jsonb[], $8::int[])
        WITH ORDINALITY AS g(stream, type, data, meta, rank, ord)
), inserted AS (
    INSERT INTO events (stream, version, type, data, meta)
    SELECT g.stream, l.version + g.rank, g.type, g.data, g.meta
    FROM given g JOIN locked l ON l.stream = g.stream
    WHERE NOT EXISTS (SELECT FROM stale)
    ORDER BY g.ord
    RETURNING position, stream, version, recorded_at
){owned}, notified AS (
    SELECT pg_notify($6, last::text) FROM (SELECT max(position) AS last FROM inserted) AS m
    WHERE $6::text IS NOT NULL
)
SELECT inserted.* FROM inserted LEFT JOIN notified ON true
"""
_LOCK_AND_INSERT = _TEMPLATE.format(owned="")
# $9 each event's event_owner row's owner, or NULL for none (projections/ownership.py's
# owners_at_insert), matched to its inserted row by stream and rank.
_LOCK_INSERT_AND_OWN = _TEMPLATE.format(
    owned=""", owned AS (
    INSERT INTO event_owner (position, owner)
    SELECT i.position, o.owner
    FROM inserted i JOIN locked l ON l.stream = i.stream
    JOIN unnest($2::text[], $8::int[], $9::text[]) AS o(stream, rank, owner)
        ON o.stream = i.stream AND o.rank = i.version - l.version
    WHERE o.owner IS NOT NULL
    ON CONFLICT DO NOTHING
)"""
)


class NewEvent(NamedTuple):
    """An event to insert: its stream, type, JSON data and JSON meta."""

    stream: str
    type: str
    data: str
    meta: str


async def lock_and_insert(
    conn: Connection,
    events: Sequence[NewEvent],
    expected: Mapping[str, int | None],
    channel: str | None,
    owners: Sequence[str | None] | None = None,
) -> list[asyncpg.Record] | None:
    """Insert ``events`` (their streams locked until commit, ``channel`` notified if given);
    each event's row (position, stream, version, recorded_at), in the events' order. None if
    a stream of ``expected`` is not at its version: then nothing was inserted, the streams
    stay locked and their versions can be read without waiting. With ``owners`` (one per
    event), each event with an owner gets its event_owner row in the same statement.
    """
    streams = sorted({e.stream for e in events})
    counted: dict[str, int] = {}
    ranks = []
    for event in events:
        counted[event.stream] = counted.get(event.stream, 0) + 1
        ranks.append(counted[event.stream])
    try:
        rows = await conn.fetch(
            _LOCK_AND_INSERT if owners is None else _LOCK_INSERT_AND_OWN,
            streams,
            [e.stream for e in events],
            [e.type for e in events],
            [e.data for e in events],
            [e.meta for e in events],
            channel,
            [expected.get(stream) for stream in streams],
            ranks,
            *(() if owners is None else (list(owners),)),
        )
    except asyncpg.LockNotAvailableError as exc:
        raise StreamBusy(streams) from exc
    except asyncpg.UniqueViolationError as exc:  # only if someone inserted bypassing the store
        raise VersionConflict(streams[0], -1, -1) from exc
    except asyncpg.UntranslatableCharacterError as exc:
        raise UnstorableText() from exc
    if not rows:
        return None
    by_version = {(row["stream"], row["version"]): row for row in rows}
    first = {row["stream"]: row["version"] for row in rows}
    for row in rows:
        first[row["stream"]] = min(first[row["stream"]], row["version"])
    return [
        by_version[(event.stream, first[event.stream] + rank - 1)]
        for event, rank in zip(events, ranks, strict=True)
    ]
