"""A model's rows, written by RowStatements.write, are what the rules left: a new row inserted,
a changed row written whole, a row gone deleted, an unchanged row left alone, and a changed
row that vanished since it was read written again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.rows import RowStatements
from projections.rules.row import Model, Row

MODEL = Model(
    table="row_writes_probe",
    key="id",
    columns=("id", "n", "tag", "doc", "at", "raw"),
    structured=frozenset({"doc"}),
    rules={},
    key_of=lambda envelope: envelope.stream,
    stream_of=lambda key: key,
    json_text_columns=frozenset({"raw"}),
)
_TABLE = """
CREATE TABLE IF NOT EXISTS row_writes_probe (
    id TEXT PRIMARY KEY, n INTEGER NOT NULL, tag TEXT, doc JSONB, at TIMESTAMPTZ, raw JSONB
)
"""
KEYS = ("a", "b", "c", "d", "e")
_START = datetime(2026, 1, 1, tzinfo=UTC)

rows = st.fixed_dictionaries(
    {
        "n": st.integers(-5, 5),
        "tag": st.none() | st.sampled_from(["x", "y", "it's"]),
        "doc": st.none() | st.dictionaries(st.sampled_from(["k", "l"]), st.integers(0, 3)),
        "at": st.none() | st.integers(0, 3).map(lambda h: _START + timedelta(hours=h)),
        "raw": st.none() | st.sampled_from(['{"v": 1}', "[1, 2]", '"s"']),
    }
)
# What the table held, which rows vanished after the read, and what the rules left (None: the
# row is gone); keys the rules did not touch are absent from ``after``.
histories = st.tuples(
    st.dictionaries(st.sampled_from(KEYS), rows),
    st.sets(st.sampled_from(KEYS)),
    st.dictionaries(st.sampled_from(KEYS), st.none() | rows),
)


def _keyed(key: str, row: dict[str, Any]) -> Row:
    return {"id": key, **row}


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(history=histories)
async def test_written_rows_are_what_the_rules_left(
    pool: asyncpg.Pool, history: tuple[dict[str, dict[str, Any]], set[str], dict[str, Any]]
) -> None:
    held, vanished, left = history
    statements = RowStatements(MODEL)
    async with pool.acquire() as conn:
        await conn.execute(_TABLE)
        await conn.execute("TRUNCATE row_writes_probe")
        await statements.write(conn, {}, {k: _keyed(k, r) for k, r in held.items()})
        before = await statements.read(conn, list(held))
        assert before == {k: _keyed(k, r) for k, r in held.items()}
        if vanished:
            await conn.execute("DELETE FROM row_writes_probe WHERE id = ANY($1)", list(vanished))
        after = {k: None if r is None else _keyed(k, r) for k, r in left.items()}

        await statements.write(conn, before, after)

        expected = {k: v for k, v in before.items() if k not in vanished}
        for key, row in after.items():
            if row is None:
                expected.pop(key, None)
            elif row != before.get(key):  # an unchanged row is not written
                expected[key] = row
        assert await statements.read(conn, list(KEYS)) == expected
