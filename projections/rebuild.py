"""Rebuild read models from scratch by replaying the whole event log through them."""

from __future__ import annotations

from collections.abc import Callable

from domain.envelope import Envelope, envelope_from_row
from projections.base import Connection, ProjectionSet
from projections.setwise import Setwise

Progress = Callable[[int, int], None]

_SELECT = """
SELECT position, stream, version, data::text AS data, meta::text AS meta, recorded_at
FROM events WHERE position > $1 ORDER BY position LIMIT $2
"""


async def rebuild(
    conn: Connection,
    projections: ProjectionSet,
    *,
    append_lock: int,
    batch: int = 5000,
    progress: Progress | None = None,
) -> int:
    """Empty the projections' tables, replay every event into them and return how many.

    ``append_lock`` must be the store's append lock (``services.store.events.APPEND_LOCK``; passed
    in because projections may not import services). The whole rebuild is one transaction that
    holds that lock, so appends wait until it commits and the rebuilt tables are exactly the log's
    state. Readers of the rebuilt tables wait too: TRUNCATE locks them exclusively. On any error
    (e.g. an undecodable event) everything rolls back and the old tables stay.

    ``progress(done, total)`` is called after each batch; ``total`` is the log's size at the start.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    # READ COMMITTED (asyncpg refuses it when nested in a transaction at another level): every
    # statement after the lock sees all appends that committed while we waited for it, whereas a
    # snapshot taken at the first statement would predate them and the replay would miss them.
    async with conn.transaction(isolation="read_committed"):
        await conn.execute("SELECT pg_advisory_xact_lock($1)", append_lock)
        total = int(await conn.fetchval("SELECT count(*) FROM events"))
        await _reset(conn, projections)
        indexes = await _drop_secondary_indexes(conn, projections)
        done = await _replay(conn, projections, batch, total, progress)
        for definition in indexes:
            await conn.execute(definition)
        return done


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


# Indexes that only speed up reads: no uniqueness, no constraint, no primary key.
_SECONDARY = """
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i
WHERE i.indrelid = ANY($1::text[]::regclass[]) AND NOT i.indisunique AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY 1
"""


async def _drop_secondary_indexes(conn: Connection, projections: ProjectionSet) -> list[str]:
    """Drop the emptied tables' read-only indexes and return how to create them again.

    Replaying writes every row several times (a run's row once per event) and each write
    would update every index; building the indexes once over the final rows is far cheaper.
    Unique indexes stay, so the replay is checked as the appends were. Inside the rebuild's
    transaction: on error the indexes come back with the old tables.
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
    """Apply the log batch by batch in position order; ``apply`` also moves the checkpoints."""
    done, last, setwise = 0, 0, Setwise()
    while envelopes := await _read(conn, after=last, limit=batch):
        await projections.apply(conn, envelopes, setwise=setwise)
        done, last = done + len(envelopes), envelopes[-1].position
        if progress is not None:
            progress(done, total)
    return done


async def _read(conn: Connection, *, after: int, limit: int) -> list[Envelope]:
    rows = await conn.fetch(_SELECT, after, limit)
    return [envelope_from_row(row) for row in rows]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
