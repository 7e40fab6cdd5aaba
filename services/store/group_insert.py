"""A group's events inserted in one statement that also locks their streams and numbers them
(services/store/lock_insert.py), for groups in which no command expects a version.

``insert_unversioned`` runs in the caller's transaction, with the projections after it.
``insert_alone`` needs no transaction at all, for the groups whose projections the statement
itself can do: see its docstring.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from domain.envelope import Envelope, decode_event, encode_event, encode_meta
from domain.events import event_type
from projections.base import Connection, ProjectionSet
from projections.ownership import owners_at_insert
from services.store.events import AppendResult, Command, count_appended, notify_channel
from services.store.lock_insert import NewEvent, lock_and_insert


def _new_events(commands: Sequence[Command]) -> tuple[list[int], list[NewEvent]]:
    """The commands' events in order, and the index of each one's command."""
    metas = [encode_meta(c.meta) for c in commands]
    command_of = [i for i, c in enumerate(commands) for a in c.appends for _ in a.events]
    events = [
        NewEvent(a.stream, event_type(e), encode_event(e), metas[i])
        for i, c in enumerate(commands)
        for a in c.appends
        for e in a.events
    ]
    return command_of, events


async def insert_unversioned(
    conn: Connection, commands: Sequence[Command], projections: ProjectionSet
) -> list[list[Envelope]]:
    """Append the commands' events (none may expect a version) and project them; each
    command's envelopes, in its order."""
    command_of, events = _new_events(commands)
    rows = await lock_and_insert(conn, events, {}, notify_channel())
    assert rows is not None  # nothing was expected, so nothing can be stale
    count_appended([e.type for e in events])
    envelopes: list[list[Envelope]] = [[] for _ in commands]
    for index, event, row in zip(command_of, events, rows, strict=True):
        envelopes[index].append(
            Envelope(
                position=row["position"],
                stream=event.stream,
                version=row["version"],
                # as stored, so a rebuild reproduces what the projections saw
                event=decode_event(event.data),
                meta=commands[index].meta,
                recorded_at=row["recorded_at"],
            )
        )
    await projections.apply(conn, sorted((e for c in envelopes for e in c), key=_position))
    return envelopes


async def insert_alone(
    conn: Connection, commands: Sequence[Command], projections: ProjectionSet
) -> list[AppendResult] | None:
    """Record the commands in one statement, outside any transaction (the statement is its
    own): each command's result. None, with nothing done, unless the statement can do all
    the group's work: no command expects a version or repeats an idempotency key, so nothing
    is read and decided between the lock and the insert, and the statement files every
    event's projected row itself (projections/ownership.py's ``owners_at_insert``: events
    only ownership handles, with owners known before they are stored, as external events').

    One round trip for the group instead of four (BEGIN; lock and insert; the ownership
    rows; COMMIT). ``ordinaut bench append`` at 16 appenders, alternating runs of 5 s:
    4,483-4,802 commands/s before, 5,967-7,923 after, with about half the client CPU per
    command.
    """
    if any(
        c.meta.idempotency_key is not None or any(a.expected_version is not None for a in c.appends)
        for c in commands
    ):
        return None
    filed = owners_at_insert(
        projections, [(e, c.meta.actor) for c in commands for a in c.appends for e in a.events]
    )
    if filed is None:
        return None
    command_of, events = _new_events(commands)
    rows = await lock_and_insert(conn, events, {}, notify_channel(), filed)
    assert rows is not None  # nothing was expected, so nothing can be stale
    count_appended([e.type for e in events])
    mine: list[list[asyncpg.Record]] = [[] for _ in commands]
    for index, row in zip(command_of, rows, strict=True):
        mine[index].append(row)
    results = []
    for command_rows in mine:
        positions = [row["position"] for row in command_rows]
        results.append(
            AppendResult(
                first_position=min(positions),
                last_position=max(positions),
                versions={row["stream"]: row["version"] for row in command_rows},
            )
        )
    return results


def _position(envelope: Envelope) -> int:
    return envelope.position
