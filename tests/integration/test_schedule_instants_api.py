"""Instants over HTTP: the calendar's ends are 422s naming the field, not 500s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from services.api.app import ApiConfig, create_app
from services.runtime.admin_token import token_hash

ADMIN = "admin-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
RANGE = "is outside the supported range (0001-01-02T00:00:00Z to before 9999-12-31T00:00:00Z)"
DAILY = {"title": "x", "schedule_kind": "cron", "schedule_expr": "0 9 * * *"}
# The one-shots of the bug report, each answered with a 500 before.
EXTREME_ONCE = [
    ({"schedule_expr": "9999-12-31T23:59:59-12:00"}, "9999-12-31T23:59:59-12:00"),
    ({"schedule_expr": "0001-01-01T00:00:00+14:00"}, "0001-01-01T00:00:00+14:00"),
    (
        {"schedule_expr": "9999-12-31T23:59:59Z", "timezone": "Pacific/Kiritimati"},
        "9999-12-31T23:59:59+00:00",
    ),
    (
        {"schedule_expr": "9999-12-31T23:59:59", "timezone": "America/New_York"},
        "9999-12-31T23:59:59 in America/New_York",
    ),
]


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(ApiConfig(database_url, redis_url, token_hash(ADMIN)))
    async with AsyncTestClient(app) as test_client:
        yield test_client


def assert_refused(response: Any, field: str, reason: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"] == [{"field": field, "reason": reason}]


async def test_tasks_out_of_range_are_refused_everywhere_and_write_nothing(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    created = await client.post("/tasks", headers=AUTH, json=DAILY)
    assert created.status_code == 201, created.text
    url = f"/tasks/{created.json()['id']}"
    before = await pool.fetchval("SELECT count(*) FROM events")
    for body, shown in EXTREME_ONCE:
        once = {**DAILY, "schedule_kind": "once", **body}
        reason = f"{shown} {RANGE}"
        assert_refused(
            await client.post("/tasks", headers=AUTH, json=once), "schedule_expr", reason
        )
        dry = await client.post("/tasks/dry_run", headers=AUTH, json={"task": once})
        assert_refused(dry, "schedule_expr", reason)
        patch = {key: value for key, value in once.items() if key != "title"}
        assert_refused(await client.patch(url, headers=AUTH, json=patch), "schedule_expr", reason)
    rrule = {
        "schedule_kind": "rrule",
        "schedule_expr": "FREQ=DAILY",
        "dtstart": "0001-01-01T00:00:00Z",
    }
    response = await client.patch(url, headers=AUTH, json=rrule)
    assert_refused(response, "dtstart", f"0001-01-01T00:00:00+00:00 {RANGE}")
    assert await pool.fetchval("SELECT count(*) FROM events") == before
