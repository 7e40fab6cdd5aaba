"""Any valid tasks file, applied again, changes nothing; and what is stored is what it says."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.registry import inline_projections
from services.declarative.apply import ApplyOptions, apply_file
from services.declarative.loader import parse_task_file
from tests.support import fresh_database

SCHEDULES = [
    {"schedule_kind": "cron", "schedule_expr": "*/5 * * * *", "timezone": "Europe/Chisinau"},
    {"schedule_kind": "rrule", "schedule_expr": "FREQ=DAILY;BYHOUR=9"},
    {"schedule_kind": "once", "schedule_expr": "2099-01-01T10:00:00+02:00"},
    {"schedule_kind": "event", "schedule_expr": "calendar.*"},
]
# PostgreSQL cannot store NUL in text: such a file is refused when it is written
texts = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)
tasks = st.fixed_dictionaries(
    {
        "title": texts.filter(str.strip),
        "priority": st.integers(1, 9),
        "payload": st.fixed_dictionaries({"params": st.dictionaries(texts, json_values)}),
    },
    optional={
        "description": texts,
        "metadata": st.dictionaries(texts.filter(bool), texts, max_size=3),
        "backoff_base_seconds": st.floats(0.1, 86_400),
    },
)


def file_text(
    prefix: str, task_list: list[dict[str, Any]], schedules: list[int], as_json: bool
) -> str:
    document = {
        "source": prefix,
        "tasks": [
            {"key": f"{prefix}-{index}", **SCHEDULES[schedule], **task}
            for index, (task, schedule) in enumerate(zip(task_list, schedules, strict=False))
        ],
    }
    return json.dumps(document) if as_json else yaml.safe_dump(document)


@pytest.fixture(scope="module")
async def conn(postgres_url: str, template_database: str) -> AsyncIterator[asyncpg.Connection]:
    """One database for every example: each applies its own keys, under its own source."""
    async with fresh_database(postgres_url, template_database) as connection:
        yield connection


@settings(max_examples=100, deadline=None, database=None)
@given(
    first=st.lists(tasks, min_size=1, max_size=3),
    second=st.lists(tasks, min_size=1, max_size=3),
    schedules=st.lists(st.integers(0, len(SCHEDULES) - 1), min_size=3, max_size=3),
    as_json=st.booleans(),
)
async def test_a_file_applied_again_changes_nothing_and_is_what_is_stored(
    conn: asyncpg.Connection,
    first: list[dict[str, Any]],
    second: list[dict[str, Any]],
    schedules: list[int],
    as_json: bool,
) -> None:
    name, prefix = ("tasks.json" if as_json else "tasks.yaml"), uuid.uuid4().hex
    for task_list in (first, second):  # the second file changes the first one's tasks
        text = file_text(prefix, task_list, schedules, as_json)
        loaded = parse_task_file(text, name, as_json=as_json)
        await apply_file(conn, loaded, ApplyOptions(), inline_projections())
        again = await apply_file(conn, loaded, ApplyOptions(), inline_projections())
        assert [(c.action, c.changed) for c in again.tasks] == [("unchanged", {})] * len(task_list)
        for index, task in enumerate(task_list):
            # PostgreSQL's own JSON equality: 1e23 = 100000000000000000000000, true <> 1
            stored = await conn.fetchval(
                "SELECT definition -> 'payload' = $2::jsonb FROM task WHERE key = $1",
                f"{prefix}-{index}",
                json.dumps(task["payload"]),
            )
            assert stored, (task["payload"], index)
