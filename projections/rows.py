"""The inline path of a read model kept by pure rules (projections/rules): read the rows a
batch of events touches, apply the rules, write the rows that changed.

The same rules fold the whole log in memory during a rebuild (projections/fold.py), so the
inline tables and the rebuilt ones cannot disagree. The SQL here only reads and writes rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from domain.envelope import Envelope
from projections.base import Connection
from projections.rules.row import Model, Row, json_text


class RowStatements:
    """A model's SQL: read rows by key (optionally locking them), upsert rows, delete rows."""

    def __init__(self, model: Model, *, lock: bool = False) -> None:
        self.model = model
        table, key, columns = _quote(model.table), _quote(model.key), model.columns
        names = ", ".join(_quote(c) for c in columns)
        # Identifiers come from the model's own constants, not from input.
        self.select = f"SELECT {names} FROM {table} WHERE {key} = ANY($1::text[])"  # noqa: S608
        if lock:
            # Other writers of this table (e.g. lease heartbeats) wait until commit.
            self.select += " FOR UPDATE"
        values = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
        sets = ", ".join(f"{_quote(c)} = EXCLUDED.{_quote(c)}" for c in columns if c != model.key)
        self.upsert = (
            f"INSERT INTO {table} ({names}) VALUES ({values})"  # noqa: S608
            f" ON CONFLICT ({key}) DO UPDATE SET {sets}"
        )
        # Many rows in one statement: the rows as one JSON array, typed by the table's own row
        # type. One statement instead of one per row (executemany) took the worker's and the
        # server's share of `bench compare` down, where a batch writes hundreds of runs.
        self.upsert_many = (
            f"INSERT INTO {table} ({names}) SELECT {names}"  # noqa: S608
            f" FROM jsonb_populate_recordset(NULL::{table}, $1::jsonb)"
            f" ON CONFLICT ({key}) DO UPDATE SET {sets}"
        )
        self.delete = f"DELETE FROM {table} WHERE {key} = ANY($1::text[])"  # noqa: S608

    async def read(self, conn: Connection, keys: Sequence[str]) -> dict[str, Row]:
        """The rows of ``keys`` that exist, JSON values decoded."""
        found = await conn.fetch(self.select, list(keys))
        structured = self.model.structured
        return {
            row[self.model.key]: {
                name: msgspec.json.decode(value)
                if name in structured and value is not None
                else value
                for name, value in row.items()
            }
            for row in found
        }

    async def write(
        self,
        conn: Connection,
        before: dict[str, Row],
        after: dict[str, Row | None],
        unread: frozenset[str] = frozenset(),
    ) -> None:
        """Write the rows ``after`` changed from ``before``: upsert or delete (``unread``:
        keys whose rows were not read, which may exist)."""
        gone = [
            key for key, row in after.items() if row is None and (key in before or key in unread)
        ]
        if gone:
            await conn.execute(self.delete, gone)
        changed = [row for key, row in after.items() if row is not None and row != before.get(key)]
        if len(changed) == 1:
            await conn.execute(self.upsert, *self._args(changed[0]))
        elif changed:
            rows = [self._json_row(row) for row in changed]
            await conn.execute(self.upsert_many, _encoder.encode(rows).decode())

    def _args(self, row: Row) -> tuple[Any, ...]:
        structured = self.model.structured
        return tuple(
            json_text(row[c]) if c in structured and row[c] is not None else row[c]
            for c in self.model.columns
        )

    def _json_row(self, row: Row) -> dict[str, Any]:
        """The row as an element of ``upsert_many``'s JSON array.

        A naive instant is given UTC, as asyncpg sends it for a timestamptz column: in JSON
        without an offset PostgreSQL would read it in the session's time zone instead. (A loop,
        not a comprehension calling a helper per column: this runs for every column of every
        row a batch writes.)
        """
        text_columns = self.model.json_text_columns
        values: dict[str, Any] = {}
        for column in self.model.columns:
            value = row[column]
            if value is not None:
                if column in text_columns:
                    value = msgspec.Raw(value.encode())
                elif isinstance(value, datetime) and value.tzinfo is None:
                    value = value.replace(tzinfo=UTC)
            values[column] = value
        return values


_encoder = msgspec.json.Encoder()


class RuleProjection:
    """A read model kept by one model's rules and nothing more (runs, tool, secret,
    condition_state, agent_limits): each batch reads the rows its events touch, applies the
    rules and writes what changed. ``name`` is the reader's name in projection_checkpoints."""

    def __init__(self, name: str, model: Model) -> None:
        self.name = name
        self.tables: tuple[str, ...] = (model.table,)
        self.handles: frozenset[str] = model.handles
        self._rows = RowStatements(model)

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """Change the row for one event."""
        await self.apply_batch(conn, [envelope])

    async def apply_batch(self, conn: Connection, envelopes: Sequence[Envelope]) -> None:
        """Change the rows a batch's events touch."""
        await apply_rules(conn, self._rows, envelopes)


async def apply_rules(
    conn: Connection,
    statements: RowStatements,
    envelopes: Sequence[Envelope],
    context: Callable[[str], Row | None] | None = None,
) -> None:
    """Read the rows the events change (none for a row a new stream starts), apply the
    rules in order and write what changed."""
    model = statements.model
    mine = [e for e in envelopes if e.type in model.rules]
    if not mine:
        return
    keys: dict[str, bool] = {}  # key -> whether it may have a row already
    last: dict[str, str] = {}  # key -> its last event's type
    for envelope in mine:
        key = model.key_of(envelope)
        if key not in keys:
            keys[key] = not model.is_new(envelope)
        last[key] = envelope.type
    # A row that the batch's last event for it removes whatever it held need not be read.
    unread = frozenset(
        key for key, may_exist in keys.items() if may_exist and last[key] in model.removes
    )
    existing = [key for key, may_exist in keys.items() if may_exist and key not in unread]
    before = await statements.read(conn, existing) if existing else {}
    await statements.write(conn, before, fold_rows(model, before, mine, context), unread)


def fold_rows(
    model: Model,
    rows: dict[str, Row],
    envelopes: Sequence[Envelope],
    context: Callable[[str], Row | None] | None = None,
) -> dict[str, Row | None]:
    """Apply each event's rule in order to the rows (None: the row is gone); the rows an
    event touched, as the events leave them. ``context(key)`` is passed to rules that read
    another model's row (due_work reads its run's)."""
    after: dict[str, Row | None] = {}
    for envelope in envelopes:
        rule = model.rules.get(envelope.type)
        if rule is None:
            continue
        key = model.key_of(envelope)
        current = after[key] if key in after else rows.get(key)
        if context is None:
            after[key] = rule(current, envelope)
        else:
            after[key] = rule(current, envelope, context(key))
    return after


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
