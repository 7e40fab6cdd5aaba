"""Every table kept by rules (projections/rules) matches the migrated schema: its columns exist,
and each jsonb column says how its rules hold the value (decoded, or as JSON text), which the
inline path's many-row upsert (projections/rows.py) relies on to write it as the same JSON."""

from __future__ import annotations

import asyncpg
import pytest

from projections.rules import agent, agent_limits, condition, due_work, runs, secret, task, tool
from projections.rules.row import Model

MODELS = (
    task.MODEL,
    runs.MODEL,
    due_work.MODEL,
    secret.MODEL,
    agent_limits.MODEL,
    agent.AGENT,
    agent.TOKEN,
    tool.MODEL,
    condition.MODEL,
)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.table)
async def test_jsonb_columns_are_declared(pool: asyncpg.Pool, model: Model) -> None:
    rows = await pool.fetch(
        "SELECT column_name, udt_name FROM information_schema.columns WHERE table_name = $1",
        model.table,
    )
    types = {row["column_name"]: row["udt_name"] for row in rows}
    assert set(model.columns) <= set(types)
    jsonb = {c for c in model.columns if types[c] == "jsonb"}
    assert jsonb == model.structured | model.json_text_columns
    assert not model.structured & model.json_text_columns
