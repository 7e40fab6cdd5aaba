"""A group's events inserted in one statement that also locks their streams and numbers them
(services/store/lock_insert.py), for groups in which no command expects a version."""

from __future__ import annotations

from collections.abc import Sequence

from domain.envelope import Envelope, decode_event, encode_event, encode_meta
from domain.events import event_type
from projections.base import Connection, ProjectionSet
from services.store.events import Command, count_appended, notify_channel
from services.store.lock_insert import NewEvent, lock_and_insert


async def insert_unversioned(
    conn: Connection, commands: Sequence[Command], projections: ProjectionSet
) -> list[list[Envelope]]:
    """Append the commands' events (none may expect a version) and project them; each
    command's envelopes, in its order."""
    owners = [i for i, c in enumerate(commands) for a in c.appends for _ in a.events]
    metas = [encode_meta(c.meta) for c in commands]
    events = [
        NewEvent(a.stream, event_type(e), encode_event(e), metas[i])
        for i, c in enumerate(commands)
        for a in c.appends
        for e in a.events
    ]
    rows = await lock_and_insert(conn, events, {}, notify_channel())
    assert rows is not None  # nothing was expected, so nothing can be stale
    count_appended([e.type for e in events])
    envelopes: list[list[Envelope]] = [[] for _ in commands]
    for owner, event, row in zip(owners, events, rows, strict=True):
        envelopes[owner].append(
            Envelope(
                position=row["position"],
                stream=event.stream,
                version=row["version"],
                # as stored, so a rebuild reproduces what the projections saw
                event=decode_event(event.data),
                meta=commands[owner].meta,
                recorded_at=row["recorded_at"],
            )
        )
    await projections.apply(conn, sorted((e for c in envelopes for e in c), key=_position))
    return envelopes


def _position(envelope: Envelope) -> int:
    return envelope.position
