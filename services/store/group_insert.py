"""A group's events inserted in one statement that also locks their streams and numbers them.

For groups in which no command expects a version: nothing needs deciding between reading the
streams' versions and inserting, so the lock, the version read and the insert are one round
trip instead of two. The versions come from ``ordinaut_lock_streams`` (migration 0030), which
reads them after taking the locks, so they are current whatever the statement's own snapshot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import asyncpg

from domain.envelope import Envelope, decode_event, encode_event, encode_meta
from domain.events import event_type
from projections.base import Connection, ProjectionSet
from services.store.errors import StreamBusy, UnstorableText
from services.store.events import Command, count_appended, notify_channel

# Each event's version: its stream's locked version plus its rank among the group's events of
# that stream, in the group's order (ord); positions are drawn in that order too.
_LOCK_AND_INSERT = """
WITH locked AS (
    SELECT stream, version FROM ordinaut_lock_streams($1::text[])
), given AS (
    SELECT * FROM unnest($2::text[], $3::text[], $4::jsonb[], $5::jsonb[])
        WITH ORDINALITY AS g(stream, type, data, meta, ord)
), inserted AS (
    INSERT INTO events (stream, version, type, data, meta)
    SELECT g.stream, l.version + row_number() OVER (PARTITION BY g.stream ORDER BY g.ord),
           g.type, g.data, g.meta
    FROM given g JOIN locked l ON l.stream = g.stream
    ORDER BY g.ord
    RETURNING position, stream, version, recorded_at
), notified AS (
    SELECT pg_notify($6, last::text) FROM (SELECT max(position) AS last FROM inserted) AS m
    WHERE $6::text IS NOT NULL
)
SELECT inserted.* FROM inserted LEFT JOIN notified ON true
"""


async def insert_unversioned(
    conn: Connection, commands: Sequence[Command], projections: ProjectionSet
) -> list[list[Envelope]]:
    """Append the commands' events (none may expect a version) and project them; each
    command's envelopes, in its order."""
    events = [(i, a.stream, e) for i, c in enumerate(commands) for a in c.appends for e in a.events]
    data = [encode_event(event) for _, _, event in events]
    metas = [encode_meta(c.meta) for c in commands]
    types = [event_type(event) for _, _, event in events]
    try:
        rows = await conn.fetch(
            _LOCK_AND_INSERT,
            sorted({stream for _, stream, _ in events}),
            [stream for _, stream, _ in events],
            types,
            data,
            [metas[owner] for owner, _, _ in events],
            notify_channel(),
        )
    except asyncpg.LockNotAvailableError as exc:
        raise StreamBusy(sorted({stream for _, stream, _ in events})) from exc
    except asyncpg.UntranslatableCharacterError as exc:
        raise UnstorableText() from exc
    count_appended(types)
    # A stream's rows, by version, are its events in the group's order.
    by_stream: defaultdict[str, list[asyncpg.Record]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["version"]):
        by_stream[row["stream"]].append(row)
    taken: defaultdict[str, int] = defaultdict(int)
    envelopes: list[list[Envelope]] = [[] for _ in commands]
    for (owner, stream, _), text in zip(events, data, strict=True):
        row = by_stream[stream][taken[stream]]
        taken[stream] += 1
        envelopes[owner].append(
            Envelope(
                position=row["position"],
                stream=stream,
                version=row["version"],
                # as stored, so a rebuild reproduces what the projections saw
                event=decode_event(text),
                meta=commands[owner].meta,
                recorded_at=row["recorded_at"],
            )
        )
    await projections.apply(conn, sorted((e for c in envelopes for e in c), key=_position))
    return envelopes


def _position(envelope: Envelope) -> int:
    return envelope.position
