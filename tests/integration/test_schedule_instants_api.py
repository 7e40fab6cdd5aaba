"""Instants over HTTP: wall-time `after` and `until`, and the calendar's ends as 422s, not 500s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from services.api.app import ApiConfig, create_app
from services.runtime.admin_token import token_hash

ADMIN = "admin-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
RANGE = "is outside the supported range (0001-01-02T00:00:00Z to before 9999-12-31T00:00:00Z)"
NEW_YORK = "America/New_York"
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


async def preview(client: AsyncTestClient[Any], **body: Any) -> Any:
    return await client.post("/schedules/preview", headers=AUTH, json=body)


@pytest.mark.parametrize(
    ("kind", "expr", "zone", "expected"),
    [
        ("cron", "0 0 * * *", "UTC", ["2026-12-07T00:00:00+00:00", "2026-12-08T00:00:00+00:00"]),
        (
            "rrule",
            "FREQ=DAILY;BYHOUR=12",
            "America/New_York",
            ["2026-12-06T12:00:00-05:00", "2026-12-07T12:00:00-05:00"],
        ),
        ("once", "2099-01-01T00:00:00", "Asia/Kolkata", ["2099-01-01T00:00:00+05:30"]),
    ],
)
async def test_preview_reads_after_without_an_offset_as_wall_time(
    client: AsyncTestClient[Any], kind: str, expr: str, zone: str, expected: list[str]
) -> None:
    response = await preview(
        client,
        schedule_kind=kind,
        schedule_expr=expr,
        timezone=zone,
        after="2026-12-06T10:00:00",
        count=2,
        dtstart="2026-01-01T00:00:00",
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"occurrences": expected}


async def test_preview_out_of_range_names_the_field(client: AsyncTestClient[Any]) -> None:
    for body, shown in EXTREME_ONCE:
        response = await preview(client, schedule_kind="once", **body)
        assert_refused(response, "schedule_expr", f"{shown} {RANGE}")
    response = await preview(
        client, schedule_kind="rrule", schedule_expr="FREQ=DAILY", dtstart="0001-01-01T00:00:00Z"
    )
    assert_refused(response, "dtstart", f"0001-01-01T00:00:00+00:00 {RANGE}")
    response = await preview(
        client, schedule_kind="cron", schedule_expr="* * * * *", after="9999-12-31T23:59:59-12:00"
    )
    assert_refused(response, "after", f"9999-12-31T23:59:59-12:00 {RANGE}")


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


async def test_snooze_until_is_wall_time_in_the_task_zone_and_at_most_a_year_on(
    client: AsyncTestClient[Any],
) -> None:
    body = {**DAILY, "schedule_kind": "once", "schedule_expr": "2099-06-01T09:00:00"}
    task = (await client.post("/tasks", headers=AUTH, json={**body, "timezone": NEW_YORK})).json()
    url = f"/tasks/{task['id']}/snooze"
    response = await client.post(url, headers=AUTH, json={"until": "9999-12-31T23:59:59-12:00"})
    assert_refused(response, "until", f"9999-12-31T23:59:59-12:00 {RANGE}")
    response = await client.post(url, headers=AUTH, json={"until": "2100-06-01T09:00:01"})
    reason = "must be at most 31536000 seconds (a year) after the occurrence it moves"
    assert_refused(response, "until", f"{reason} (2099-06-01T13:00:00+00:00)")
    moved = await client.post(url, headers=AUTH, json={"until": "2099-06-01T23:00:00"})
    assert moved.status_code == 200, moved.text
    # 23:00 in New York (EDT), not 23:00 UTC
    at = datetime.fromisoformat(moved.json()["next_run_at"])
    assert at == datetime(2099, 6, 2, 3, tzinfo=UTC)
