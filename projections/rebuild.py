"""Rebuild read models from scratch by replaying the whole event log through them.

The read models with pure rules (projections/fold.py) are folded in memory and each final row
is written once with COPY; the others replay their statements batch by batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from domain.envelope import Envelope, EventMeta, decode_event, decode_meta
from domain.events import Event
from projections.base import Connection, ProjectionSet
from projections.fold import TABLES as FOLDED
from projections.fold import Fold

Progress = Callable[[int, int], None]

# The log's global order (services/store/order.py): (txid, position). Every event committed
# when a statement starts is visible to it; see rebuild() for why that is exactly right here.
_SELECT = """
SELECT position, stream, version, type, data::text AS data, meta::text AS meta, recorded_at, txid
FROM events WHERE (txid, position) > ($1::xid8, $2::bigint) ORDER BY txid, position LIMIT $3
"""
# How long the rebuild waits for appends that already wrote into its tables to commit.
LOCK_TIMEOUT = "60s"
_event_decoder: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)
# Distinct metas remembered while decoding (commands' metas differ by correlation id).
_METAS_KEPT = 10_000


async def rebuild(
    conn: Connection,
    projections: ProjectionSet,
    *,
    batch: int = 5000,
    progress: Progress | None = None,
) -> int:
    """Empty the projections' tables, replay every event into them and return how many.

    The whole rebuild is one transaction, and its TRUNCATE locks the tables exclusively (bounded
    by LOCK_TIMEOUT): it first waits for every append that already wrote into them to commit,
    then every append that would write into them waits for the rebuild. So each event either
    committed before the replay's reads, which see it (READ COMMITTED), or projects itself
    into the rebuilt tables afterwards: the rebuilt tables are exactly the log's state, and no
    global lock is needed. Appends whose events touch none of these tables never wait. On any
    error (e.g. an undecodable event) everything rolls back and the old tables stay.

    ``progress(done, total)`` is called after each batch; ``total`` is the log's size at the start.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    # READ COMMITTED (asyncpg refuses it when nested in a transaction at another level): every
    # statement after the TRUNCATE sees all appends that committed while it waited, whereas a
    # snapshot taken at the first statement would predate them and the replay would miss them.
    async with conn.transaction(isolation="read_committed"):
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        await _reset(conn, projections)
        total = int(await conn.fetchval("SELECT count(*) FROM events"))
        indexes = await _drop_secondary_indexes(conn, projections)
        with _no_cycle_collection():
            done = await _replay(conn, projections, batch, total, progress)
        for definition in indexes:
            await conn.execute(definition)
        return done


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause Python's cycle collector while the fold builds every row in memory.

    The fold allocates objects for every event and keeps a growing heap of rows alive, so the
    collector would run every few hundred allocations and walk ever more of them for no cycle
    to free: it took about 40% of the fold's CPU. Whatever cycles the replay leaves are
    collected once it is enabled again.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def _reset(conn: Connection, projections: ProjectionSet) -> None:
    """Empty the tables and put the checkpoints at 0, which is right if the log is empty."""
    tables = dict.fromkeys(table for p in projections.projections for table in p.tables)
    if tables:
        # RESTART IDENTITY: ids the replay generates start afresh, as they did on a new database.
        quoted = ", ".join(_quote(table) for table in tables)
        await conn.execute(f"TRUNCATE {quoted} RESTART IDENTITY")
    await conn.execute(
        "INSERT INTO projection_checkpoints (name, position) SELECT unnest($1::text[]), 0"
        " ON CONFLICT (name) DO UPDATE SET position = 0",
        [p.name for p in projections.projections],
    )


# Indexes that no constraint owns (a primary key or a UNIQUE constraint stays): those that speed
# up reads, and unique indexes, which are checked again when created over the final rows.
_SECONDARY = """
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i
WHERE i.indrelid = ANY($1::text[]::regclass[]) AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY 1
"""


async def _drop_secondary_indexes(conn: Connection, projections: ProjectionSet) -> list[str]:
    """Drop the emptied tables' indexes that no constraint owns and return how to create them
    again.

    Building an index once over the final rows is far cheaper than updating it row by row.
    A unique index (e.g. one task per owner and key) is checked when it is created, so a log
    that breaks it still fails the rebuild. Other readers wait for the rebuild's lock on the
    tables and never see them without their indexes. Inside the rebuild's transaction: on
    error the indexes come back with the old tables.
    """
    tables = list(dict.fromkeys(t for p in projections.projections for t in p.tables))
    rows = await conn.fetch(_SECONDARY, tables)
    for row in rows:
        await conn.execute(f"DROP INDEX {row['name']}")
    return [row["definition"] for row in rows]


async def _replay(
    conn: Connection,
    projections: ProjectionSet,
    batch: int,
    total: int,
    progress: Progress | None,
) -> int:
    """Apply the log batch by batch in its order, write the folded rows, then move the
    checkpoints to its end."""
    done, fold = 0, Fold()
    folded = [p.name for p in projections.projections if p.name in FOLDED]
    replayed = projections.named(p.name for p in projections.projections if p.name not in FOLDED)
    metas: dict[str, EventMeta] = {}
    handled = replayed.handles  # a property that builds a set: read once
    rows, last = await conn.fetch(_SELECT, 0, 0, batch), (0, 0)
    while rows:
        last = (int(rows[-1]["txid"]), rows[-1]["position"])
        envelopes: list[Envelope] = []
        if not handled.isdisjoint([row[3] for row in rows]):  # row[3]: its type
            # These events' statements use the connection: they go before the next read.
            envelopes = _envelopes(rows, metas)
            others = [e for e in envelopes if e.type in handled]
            await replayed.apply(conn, others)
        # PostgreSQL reads the next batch while this one is decoded and folded.
        following = asyncio.ensure_future(conn.fetch(_SELECT, last[0], last[1], batch))
        await asyncio.sleep(0)  # lets the read send its query before the fold holds the loop
        try:
            if folded:
                envelopes = envelopes or _envelopes(rows, metas)
                fold.apply(envelopes, [row[3] for row in rows])
            done += len(rows)
            if progress is not None:
                progress(done, total)
        except BaseException:
            await _settle(following)  # the connection must be free to roll back
            raise
        rows = await following
    for name in folded:
        for table, (columns, records) in fold.records(name).items():
            if records:
                await conn.copy_records_to_table(table, records=records, columns=columns)
    # The checkpoint belongs to this reader: the last position it applied (inline appends
    # keep the tables current without touching it, so they share no row).
    await conn.execute(
        "UPDATE projection_checkpoints SET position = $1 WHERE name = ANY($2::text[])",
        last[1],
        [p.name for p in projections.projections],
    )
    return done


async def _settle(read: asyncio.Future[list[Any]]) -> None:
    """Wait for a read in flight to end, whatever its outcome, so the connection is free."""
    with contextlib.suppress(Exception):
        await read


def _envelopes(rows: list[Any], metas: dict[str, EventMeta]) -> list[Envelope]:
    """The rows as envelopes; a command's events share one meta, so each is decoded once.

    This runs once per event of the log: it unpacks each row by position (the columns of
    _SELECT) and calls the decoder itself, which costs a fraction of going through names and
    envelope_from_row.
    """
    if len(metas) > _METAS_KEPT:
        metas.clear()
    envelopes: list[Envelope] = []
    decode = _event_decoder.decode
    append = envelopes.append
    try:
        for position, stream, version, _, data, meta_text, recorded_at, _ in rows:
            meta = metas.get(meta_text)
            if meta is None:
                meta = metas[meta_text] = decode_meta(meta_text, where=_where(position))
            append(
                Envelope(
                    position=position,
                    stream=stream,
                    version=version,
                    event=decode(data),
                    meta=meta,
                    recorded_at=recorded_at,
                )
            )
    except (msgspec.ValidationError, msgspec.DecodeError):
        # Again, through the codec, to raise its error naming the event that failed.
        for row in rows[len(envelopes) :]:
            decode_event(row["data"], where=_where(row["position"]))
        raise
    return envelopes


def _where(position: int) -> str:
    return f"event at position {position}"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
