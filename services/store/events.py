"""The event store: append with optimistic concurrency and idempotency, read, and notify.

No global write lock: appends to different streams run concurrently. Readers get one exact
global order from the transaction id each row records (see services/store/order.py); appends
to one stream queue on that stream's lock (``ordinaut_lock_streams``, migration 0030), so
versions are handed out without conflicts between appenders that do not expect a version.

``append_in_transaction`` (one command, in the caller's transaction) and ``insert_commands`` (a
batch) are the store's one way to record events with their inline projections; callers take
no store locks themselves. A command that needs no transaction of its caller's goes through
the process's group committer (services/store/group.py), which records concurrent commands
together with these same functions.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import msgspec

from domain.envelope import (
    Envelope,
    EventMeta,
    decode_event,
    encode_event,
    encode_meta,
    envelope_from_row,
)
from domain.events import Event, event_type
from projections.base import Connection, ProjectionSet
from services.runtime import tracing
from services.runtime.metrics import EVENTS_APPENDED
from services.store.errors import (
    IdempotencyKeyReused,
    StreamBusy,
    UnstorableText,
    VersionConflict,
)
from services.store.lock_insert import NewEvent, lock_and_insert
from services.store.order import Cursor

NOTIFY_CHANNEL = "ordinaut_events"
# A NOTIFY makes its transaction take PostgreSQL's one notify-queue lock through its commit
# (PreCommit_Notify), which would serialise the commits of every appender again. So a process
# wakes tailers at most once per NOTIFY_EVERY seconds; tailers re-read at least every
# services.store.tail.POLL_SECONDS, which bounds how late they see an un-announced event.
NOTIFY_EVERY = 0.01
ANY_VERSION: int | None = None  # append whatever version the stream is at


@dataclass(frozen=True)
class StreamAppend:
    """Events for one stream, valid only if the stream is at ``expected_version`` (0 = new)."""

    stream: str
    events: Sequence[Event]
    expected_version: int | None = ANY_VERSION


class AppendResult(msgspec.Struct, frozen=True, kw_only=True):
    """Where a command's events landed; ``replayed`` means an idempotent repeat appended nothing."""

    first_position: int
    last_position: int
    versions: dict[str, int]
    replayed: bool = False


class StoredEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event row exactly as stored, for readers that pass it on without decoding.

    ``cursor`` is its place in the log's global order (services/store/order.py).
    """

    cursor: str
    position: int
    stream: str
    version: int
    type: str
    data: msgspec.Raw
    meta: msgspec.Raw
    recorded_at: datetime
    txid: int = 0

    @property
    def order(self) -> Cursor:
        """The event's place in the global order, as a cursor."""
        return Cursor(self.txid, self.position)


_result_decoder = msgspec.json.Decoder(AppendResult)

# meta is one parameter: the same for every event of a command, so it is parsed once.
# $6 is the channel to notify, or NULL not to (see NOTIFY_EVERY): in the same statement, which
# saves a round trip.
_INSERT = """
WITH inserted AS (
    INSERT INTO events (stream, version, type, data, meta)
    SELECT stream, version, type, data, $5::jsonb
    FROM unnest($1::text[], $2::int[], $3::text[], $4::jsonb[]) AS e(stream, version, type, data)
    RETURNING position, stream, version, recorded_at
), notified AS (
    SELECT pg_notify($6, last::text) FROM (SELECT max(position) AS last FROM inserted) AS m
    WHERE $6::text IS NOT NULL
)
SELECT inserted.* FROM inserted LEFT JOIN notified ON true
"""


class _NotifyGate:
    """Lets one append per NOTIFY_EVERY seconds (per process) notify tailers."""

    def __init__(self) -> None:
        self._last = 0.0

    def channel(self) -> str | None:
        now = time.monotonic()
        if now - self._last < NOTIFY_EVERY:
            return None
        self._last = now
        return NOTIFY_CHANNEL


_gate = _NotifyGate()


def notify_channel() -> str | None:
    """The channel an append should notify now, or None (see NOTIFY_EVERY)."""
    return _gate.channel()


@dataclass(frozen=True)
class _Encoded:
    """A command's events as JSON, and as projections will see them (decoded from that JSON).

    Made before taking any stream lock, so no other appender waits while we encode.
    """

    types: list[str]
    data: list[str]
    stored: list[Event]
    meta: str


def _encode(appends: Sequence[StreamAppend], meta: EventMeta) -> _Encoded:
    events = [event for append in appends for event in append.events]
    data = [encode_event(event) for event in events]
    # Projections see the event exactly as stored (e.g. offsets rounded to the minute), so a
    # rebuild from the log always reproduces the inline-built read models.
    stored = [decode_event(text) for text in data]
    return _Encoded([event_type(e) for e in events], data, stored, encode_meta(meta))


async def claim_idempotency_key(
    conn: Connection, meta: EventMeta, fingerprint: str
) -> AppendResult | None:
    """Reserve the command's key, or return the original result if it was applied before.

    A concurrent first attempt holds the row lock until it commits, so the repeat waits here
    and then reads its result instead of appending twice.
    """
    assert meta.idempotency_key is not None
    inserted = await conn.fetchval(
        "INSERT INTO command_log (actor, idempotency_key, fingerprint, result)"
        " VALUES ($1, $2, $3, 'null') ON CONFLICT DO NOTHING RETURNING true",
        meta.actor,
        meta.idempotency_key,
        fingerprint,
    )
    if inserted:
        return None
    row = await conn.fetchrow(
        "SELECT fingerprint, result::text AS result FROM command_log"
        " WHERE actor = $1 AND idempotency_key = $2",
        meta.actor,
        meta.idempotency_key,
    )
    assert row is not None
    if row["fingerprint"] != fingerprint:
        raise IdempotencyKeyReused(meta.idempotency_key)
    original = _result_decoder.decode(row["result"])
    return msgspec.structs.replace(original, replayed=True)


def _command_attributes(
    conn: Connection, appends: Sequence[StreamAppend], meta: EventMeta, *_: object, **__: object
) -> tracing.Attributes:
    types = [event_type(e) for a in appends for e in a.events]
    return {"ordinaut.actor": meta.actor, "ordinaut.event.types": types}


@tracing.traced("ordinaut.command", _command_attributes)
async def append_in_transaction(
    conn: Connection,
    appends: Sequence[StreamAppend],
    meta: EventMeta,
    projections: ProjectionSet,
    *,
    fingerprint: str = "",
) -> AppendResult:
    """Append one command's events inside the caller's transaction and project them inline."""
    meta = tracing.stamped(meta)  # what these events cause continues the current trace
    if meta.idempotency_key is not None:
        replay = await claim_idempotency_key(conn, meta, fingerprint)
        if replay is not None:
            return replay
    return await append_claimed(conn, appends, meta, projections)


async def append_claimed(
    conn: Connection, appends: Sequence[StreamAppend], meta: EventMeta, projections: ProjectionSet
) -> AppendResult:
    """As ``append_in_transaction`` once the command's idempotency key (if any) is claimed:
    append, project, and keep the result for repeats of the key."""
    encoded = _encode(appends, meta)
    envelopes = await _insert(conn, appends, meta, encoded)
    count_appended(encoded.types)
    await projections.apply(conn, envelopes)
    result = AppendResult(
        first_position=envelopes[0].position,
        last_position=envelopes[-1].position,
        versions={e.stream: e.version for e in envelopes},
    )
    if meta.idempotency_key is not None:
        await conn.execute(
            "UPDATE command_log SET result = $3::jsonb WHERE actor = $1 AND idempotency_key = $2",
            meta.actor,
            meta.idempotency_key,
            msgspec.json.encode(result).decode(),
        )
    return result


def count_appended(types: Sequence[str]) -> None:
    """ordinaut_events_appended_total, by type: every insert into the log calls this once.

    Counted at insert, so a transaction rolled back afterwards still counts.
    """
    for kind, count in Counter(types).items():  # labels() costs more than the increment
        EVENTS_APPENDED.labels(kind).inc(count)


async def lock_versions(conn: Connection, streams: list[str]) -> dict[str, int]:
    """Lock the streams (until commit) and read their versions: see ordinaut_lock_streams.

    A stream held past the function's lock_timeout raises StreamBusy, never hangs.
    """
    try:
        rows = await conn.fetch("SELECT stream, version FROM ordinaut_lock_streams($1)", streams)
    except asyncpg.LockNotAvailableError as exc:
        raise StreamBusy(streams) from exc
    return {row["stream"]: row["version"] for row in rows}


async def lock_streams(conn: Connection, streams: list[str]) -> None:
    """Lock streams until commit, as an append to them does, for a caller that must decide
    from state those streams project (e.g. a condition's last value) before appending."""
    await lock_versions(conn, streams)


def number_events(
    appends: Sequence[StreamAppend], current: dict[str, int]
) -> list[tuple[str, int, Event]]:
    """Give each event its stream version, refusing a stale ``expected_version``."""
    numbered: list[tuple[str, int, Event]] = []
    for append in appends:
        version = current[append.stream]
        if append.expected_version is not None and append.expected_version != version:
            raise VersionConflict(append.stream, append.expected_version, version)
        for event in append.events:
            version += 1
            numbered.append((append.stream, version, event))
        current[append.stream] = version
    if not numbered:
        raise ValueError("a command must append at least one event")
    return numbered


async def _insert(
    conn: Connection, appends: Sequence[StreamAppend], meta: EventMeta, encoded: _Encoded
) -> list[Envelope]:
    """Check versions and insert; the streams are locked first, so their versions cannot move."""
    streams = [a.stream for a in appends]
    # Each stream once, each with events (an append of none only checks its version).
    one_each = len(set(streams)) == len(streams) and all(a.events for a in appends)
    if one_each and len(encoded.types) <= LOCK_AND_INSERT_MAX_EVENTS:
        return await _lock_and_insert(conn, appends, meta, encoded)
    numbered = number_events(appends, await lock_versions(conn, streams))
    try:
        rows = await conn.fetch(
            _INSERT,
            [stream for stream, _, _ in numbered],
            [version for _, version, _ in numbered],
            encoded.types,
            encoded.data,
            encoded.meta,
            notify_channel(),
        )
    except asyncpg.UniqueViolationError as exc:  # only if someone inserted bypassing the store
        raise VersionConflict(numbered[0][0], numbered[0][1] - 1, -1) from exc
    except asyncpg.UntranslatableCharacterError as exc:
        raise UnstorableText() from exc
    by_key = {
        (stream, version): event
        for (stream, version, _), event in zip(numbered, encoded.stored, strict=True)
    }
    return [
        Envelope(
            position=row["position"],
            stream=row["stream"],
            version=row["version"],
            event=by_key[(row["stream"], row["version"])],
            meta=meta,
            recorded_at=row["recorded_at"],
        )
        for row in sorted(rows, key=lambda r: r["position"])
    ]


# A command of at most this many events (each stream once) locks, checks and inserts in one
# statement, saving a round trip; a bigger one (a worker's batch of run results) locks, then
# inserts the events it numbered itself: the one statement joins and sorts the events in the
# server, which cost ~8 us an event more (pg_stat_statements, 40,000 events), more than the
# round trip it saves from about 20 events on.
LOCK_AND_INSERT_MAX_EVENTS = 16


async def _lock_and_insert(
    conn: Connection, appends: Sequence[StreamAppend], meta: EventMeta, encoded: _Encoded
) -> list[Envelope]:
    events = [
        NewEvent(a.stream, kind, data, encoded.meta)
        for a, kind, data in zip(
            (a for a in appends for _ in a.events), encoded.types, encoded.data, strict=True
        )
    ]
    expected = {a.stream: a.expected_version for a in appends}
    rows = await lock_and_insert(conn, events, expected, notify_channel())
    if rows is None:  # a stale expected version: raise it (the streams are held, so no wait)
        number_events(appends, await lock_versions(conn, list(expected)))
        raise AssertionError("lock_and_insert found a stale version that is not stale")
    envelopes = [
        Envelope(
            position=row["position"],
            stream=row["stream"],
            version=row["version"],
            event=event,
            meta=meta,
            recorded_at=row["recorded_at"],
        )
        for row, event in zip(rows, encoded.stored, strict=True)
    ]
    return sorted(envelopes, key=lambda e: e.position)


# As _INSERT, for several commands at once: each row carries its own command's meta.
_INSERT_MANY = """
WITH inserted AS (
    INSERT INTO events (stream, version, type, data, meta)
    SELECT stream, version, type, data, meta
    FROM unnest($1::text[], $2::int[], $3::text[], $4::jsonb[], $5::jsonb[])
        AS e(stream, version, type, data, meta)
    RETURNING position, stream, version, recorded_at
), notified AS (
    SELECT pg_notify($6, last::text) FROM (SELECT max(position) AS last FROM inserted) AS m
    WHERE $6::text IS NOT NULL
)
SELECT inserted.* FROM inserted LEFT JOIN notified ON true
"""


@dataclass(frozen=True)
class Command:
    """One command's events and the meta they are recorded with."""

    appends: Sequence[StreamAppend]
    meta: EventMeta


def _batch_attributes(
    conn: Connection, commands: Sequence[Command], *_: object
) -> tracing.Attributes:
    return {"ordinaut.commands": len(commands)}


@tracing.traced("ordinaut.commands", _batch_attributes)
async def insert_commands(
    conn: Connection,
    commands: Sequence[Command],
    projections: ProjectionSet,
    *,
    versions: dict[str, int] | None = None,
) -> list[list[Envelope]]:
    """Append several commands' events in one statement and project them; each command's
    envelopes, in its order.

    For batches (ingest, group commit): the caller has claimed the commands' idempotency keys
    and keeps their results itself. Locks the streams as a single append does, unless the
    caller did already and passes their ``versions`` (``lock_versions``; this changes them).
    """
    commands = tracing.stamped_all(commands)
    owners = [i for i, c in enumerate(commands) for a in c.appends for _ in a.events]
    metas = [encode_meta(c.meta) for c in commands]
    encoded = _encode([a for c in commands for a in c.appends], commands[0].meta)
    appends = [a for c in commands for a in c.appends]
    if versions is None:
        versions = await lock_versions(conn, list(dict.fromkeys(a.stream for a in appends)))
    numbered = number_events(appends, versions)
    try:
        rows = await conn.fetch(
            _INSERT_MANY,
            [stream for stream, _, _ in numbered],
            [version for _, version, _ in numbered],
            encoded.types,
            encoded.data,
            [metas[owner] for owner in owners],
            notify_channel(),
        )
    except asyncpg.UntranslatableCharacterError as exc:
        raise UnstorableText() from exc
    count_appended(encoded.types)
    found = {(row["stream"], row["version"]): row for row in rows}
    envelopes: list[list[Envelope]] = [[] for _ in commands]
    for (stream, version, _), event, owner in zip(numbered, encoded.stored, owners, strict=True):
        row = found[(stream, version)]
        envelopes[owner].append(
            Envelope(
                position=row["position"],
                stream=stream,
                version=version,
                event=event,
                meta=commands[owner].meta,
                recorded_at=row["recorded_at"],
            )
        )
    await projections.apply(conn, sorted((e for c in envelopes for e in c), key=_position))
    return envelopes


def _position(envelope: Envelope) -> int:
    return envelope.position


_SELECT = (
    "SELECT position, stream, version, type, data::text, meta::text, recorded_at, txid FROM events"
)


async def read_stream(conn: Connection, stream: str, *, after_version: int = 0) -> list[Envelope]:
    """One stream's events in version order."""
    rows = await conn.fetch(
        f"{_SELECT} WHERE stream = $1 AND version > $2 ORDER BY version", stream, after_version
    )
    return [envelope_from_row(row) for row in rows]


def stored_event(row: asyncpg.Record) -> StoredEvent:
    """A row of `_SELECT` (with its ``txid``) as a StoredEvent."""
    txid, position = int(row["txid"]), row["position"]
    return StoredEvent(
        cursor=Cursor(txid, position).entry_id,
        position=position,
        stream=row["stream"],
        version=row["version"],
        type=row["type"],
        data=msgspec.Raw(row["data"].encode()),
        meta=msgspec.Raw(row["meta"].encode()),
        recorded_at=row["recorded_at"],
        txid=txid,
    )


async def read_stream_stored(conn: Connection, stream: str) -> list[StoredEvent]:
    """One stream's events as stored, in version order."""
    rows = await conn.fetch(f"{_SELECT} WHERE stream = $1 ORDER BY version", stream)
    return [stored_event(row) for row in rows]


async def read_stream_latest(conn: Connection, stream: str, limit: int) -> list[StoredEvent]:
    """One stream's last ``limit`` events, newest first (one backward scan of its index)."""
    rows = await conn.fetch(
        f"{_SELECT} WHERE stream = $1 ORDER BY version DESC LIMIT $2", stream, limit
    )
    return [stored_event(row) for row in rows]
