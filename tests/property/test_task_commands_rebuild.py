"""Any sequence of task commands through the API leaves read models equal to a rebuild."""

from __future__ import annotations

from typing import Any

import asyncpg
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from projections.rebuild import rebuild
from projections.registry import inline_projections
from services.api.app import ApiConfig, create_app
from services.runtime.admin_token import token_hash
from services.runtime.embedded import with_database
from tests.support import fresh_database

ADMIN = "admin-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
SCHEDULES = [
    {"schedule_kind": "cron", "schedule_expr": "*/5 * * * *", "timezone": "Europe/Chisinau"},
    {"schedule_kind": "rrule", "schedule_expr": "FREQ=DAILY;BYHOUR=9", "timezone": "Asia/Kolkata"},
    {"schedule_kind": "once", "schedule_expr": "2099-01-01T10:00:00+02:00"},
    {"schedule_kind": "event", "schedule_expr": "calendar.*"},
]

commands = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.sampled_from(SCHEDULES), st.integers(1, 9)),
        st.tuples(st.just("patch"), st.integers(0, 3), st.sampled_from(SCHEDULES)),
        st.tuples(st.just("retitle"), st.integers(0, 3), st.text(min_size=1, max_size=20)),
        st.tuples(
            st.sampled_from(["pause", "resume", "cancel", "run_now", "delete"]), st.integers(0, 3)
        ),
        st.tuples(st.just("snooze"), st.integers(0, 3), st.integers(1, 86_400)),
    ),
    min_size=1,
    max_size=15,
)


async def send(client: AsyncTestClient[Any], ids: list[str], command: tuple[Any, ...]) -> None:
    """Send one command; commands on missing tasks or refused by state are simply refused."""
    verb = command[0]
    if verb == "create":
        body = {"title": f"task {len(ids)}", **command[1], "priority": command[2]}
        response = await client.post("/tasks", json=body, headers=AUTH)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
        return
    if not ids:
        return
    url = f"/tasks/{ids[command[1] % len(ids)]}"
    if verb == "patch":
        response = await client.patch(url, json=command[2], headers=AUTH)
    elif verb == "retitle":
        response = await client.patch(url, json={"title": command[2]}, headers=AUTH)
    elif verb == "snooze":
        response = await client.post(f"{url}/snooze", json={"seconds": command[2]}, headers=AUTH)
    elif verb == "delete":
        response = await client.delete(url, headers=AUTH)
    else:
        response = await client.post(f"{url}/{verb}", headers=AUTH)
    assert response.status_code < 500, response.text


async def tables(conn: asyncpg.Connection) -> dict[str, list[asyncpg.Record]]:
    return {
        "task": await conn.fetch("SELECT * FROM task ORDER BY id"),
        "due_work": await conn.fetch("SELECT * FROM due_work ORDER BY run_id"),
    }


@settings(max_examples=25, deadline=None, database=None)
@given(sequence=commands)
async def test_read_models_equal_a_rebuild_after_any_command_sequence(
    postgres_url: str, template_database: str, redis_url: str, sequence: list[tuple[Any, ...]]
) -> None:
    async with fresh_database(postgres_url, template_database) as conn:
        url = with_database(postgres_url, await conn.fetchval("SELECT current_database()"))
        app = create_app(ApiConfig(url, redis_url, token_hash(ADMIN), pool_size=2))
        ids: list[str] = []
        async with AsyncTestClient(app) as client:
            for command in sequence:
                await send(client, ids, command)
        inline = await tables(conn)
        await rebuild(conn, inline_projections())
        assert await tables(conn) == inline
