"""The task API over HTTP against real Postgres: commands, reads, versions, idempotency."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from services.api.app import ApiConfig, create_app
from services.runtime.admin_token import token_hash
from tests.workers import api_client

ADMIN = "admin-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
EXAMPLES = Path(__file__).parent.parent / "data" / "examples"
CRON = {
    "title": "Standup",
    "schedule_kind": "cron",
    "schedule_expr": "30 8 * * 1-5",
    "timezone": "Europe/Chisinau",
}
RRULE = {**CRON, "schedule_kind": "rrule"}


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(ApiConfig(database_url, redis_url, token_hash(ADMIN)))
    async with AsyncTestClient(app) as test_client:
        yield test_client


async def create(client: AsyncTestClient[Any], body: dict[str, Any], **headers: str) -> Any:
    response = await client.post("/tasks", json=body, headers={**AUTH, **headers})
    assert response.status_code == 201, response.text
    return response.json()


async def count(pool: asyncpg.Pool, event_type: str | None = None) -> int:
    if event_type is None:
        return int(await pool.fetchval("SELECT count(*) FROM events"))
    return int(await pool.fetchval("SELECT count(*) FROM events WHERE type = $1", event_type))


EXAMPLE_TASKS = [
    "morning_briefing",
    "morning_briefing_full",
    "email_followup_approval",
    "email_followup_foreach",
]


def tools_used(steps: list[dict[str, Any]]) -> set[str]:
    used = set()
    for step in steps:
        used.add(step["uses"])
        used |= tools_used(step.get("with", {}).get("body", []))
    return used


@pytest.mark.parametrize("example", EXAMPLE_TASKS)
async def test_the_original_examples_are_accepted_unchanged_once_their_tools_are_registered(
    client: AsyncTestClient[Any], example: str
) -> None:
    body = json.loads((EXAMPLES / f"{example}.json").read_text())
    builtins = {t["address"] for t in (await client.get("/tools", headers=AUTH)).json()["items"]}
    missing = sorted(tools_used(body["payload"]["pipeline"]) - builtins)
    refused = await client.post("/tasks", json=body, headers=AUTH)
    assert refused.status_code == 422
    reason = refused.json()["errors"][0]["reason"]
    assert any(reason.startswith(f"unknown tool {address!r}") for address in missing), reason
    for address in missing:
        tool = {
            "address": address,
            "transport": "http",
            "endpoint": f"http://127.0.0.1:9/{address}",
        }
        assert (await client.post("/tools", json=tool, headers=AUTH)).status_code == 201
    task = await create(client, body)
    assert task["definition"]["payload"] == body["payload"]
    assert task["next_run_at"] is not None


async def test_lifecycle_of_a_task(client: AsyncTestClient[Any], pool: asyncpg.Pool) -> None:
    task = await create(client, CRON)
    task_id, url = task["id"], f"/tasks/{task['id']}"
    assert (task["status"], task["version"], task["created_by"]) == ("active", 1, "admin")
    assert task["next_run_at"].endswith("08:30:00+02:00") or "T06:30:00" in task["next_run_at"]

    occurrences = (await client.get(f"{url}/occurrences?count=3", headers=AUTH)).json()
    assert len(occurrences["occurrences"]) == 3

    patched = (await client.patch(url, json={"schedule_expr": "0 9 * * *"}, headers=AUTH)).json()
    assert patched["definition"]["schedule_expr"] == "0 9 * * *"
    assert patched["next_run_at"] != task["next_run_at"]

    paused = (await client.post(f"{url}/pause", headers=AUTH)).json()
    assert paused["status"] == "paused"
    resumed = (await client.post(f"{url}/resume", headers=AUTH)).json()
    assert resumed["status"] == "active"

    snoozed = (await client.post(f"{url}/snooze", json={"seconds": 3600}, headers=AUTH)).json()
    assert snoozed["next_run_at"] != resumed["next_run_at"]

    run = await client.post(f"{url}/run_now", headers=AUTH)
    assert run.status_code == 202
    run_id = run.json()["run_id"]
    assert await pool.fetchval("SELECT task_id FROM due_work WHERE run_id = $1", run_id) == task_id
    assert (await client.get(url, headers=AUTH)).json()["next_run_at"] == snoozed["next_run_at"]

    canceled = (await client.post(f"{url}/cancel", headers=AUTH)).json()
    assert canceled["status"] == "canceled"
    refused = await client.post(f"{url}/pause", headers=AUTH)
    assert refused.status_code == 409

    assert (await client.delete(url, headers=AUTH)).status_code == 204
    assert (await client.get(url, headers=AUTH)).status_code == 404
    types = [e["type"] for e in (await pool.fetch("SELECT type FROM events ORDER BY position"))]
    assert types == [
        "task.created",
        "task.updated",
        "task.paused",
        "task.resumed",
        "task.snoozed",
        "task.run_requested",
        "run.queued",
        "task.canceled",
        "task.deleted",
    ]
    actors = {json.loads(r["meta"])["actor"] for r in await pool.fetch("SELECT meta FROM events")}
    assert actors == {"admin"}


async def test_a_stale_if_match_is_a_conflict(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    task = await create(client, CRON)
    url = f"/tasks/{task['id']}"
    fresh = await client.patch(url, json={"title": "A"}, headers={**AUTH, "If-Match": '"1"'})
    assert fresh.status_code == 200
    stale = await client.patch(url, json={"title": "B"}, headers={**AUTH, "If-Match": '"1"'})
    assert stale.status_code == 409
    assert stale.headers["content-type"] == "application/problem+json"
    assert (await client.get(url, headers=AUTH)).json()["definition"]["title"] == "A"


async def test_malformed_if_match_and_idempotency_key_are_refused_naming_the_header(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    task = await create(client, CRON)
    url = f"/tasks/{task['id']}/pause"
    for header, value in [
        ("If-Match", "version seven"),
        ("If-Match", '"' + "9" * 19 + '"'),
        ("Idempotency-Key", "k" * 201),
    ]:
        refused = await client.post(url, headers={**AUTH, header: value})
        assert refused.status_code == 422, (header, value, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert header in refused.text, refused.text
    assert await count(pool, "task.paused") == 0


async def test_a_weak_if_match_never_matches_as_if_match_compares_strongly(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    task = await create(client, CRON)
    url = f"/tasks/{task['id']}"
    etag = (await client.get(url, headers=AUTH)).headers["etag"]
    assert etag == '"1"'  # a strong tag: the version itself
    for weak in ('W/"1"', ' W/"1" '):
        refused = await client.patch(url, json={"title": "x"}, headers={**AUTH, "If-Match": weak})
        assert refused.status_code == 409, refused.text
        assert refused.json()["errors"][0]["field"] == "If-Match"
    assert await count(pool, "task.updated") == 0
    for spelling in ("{etag}", "{version}", "*"):  # the ETag as given, the bare version, any
        current = await client.get(url, headers=AUTH)
        strong = spelling.format(etag=current.headers["etag"], version=current.json()["version"])
        changed = await client.post(f"{url}/pause", headers={**AUTH, "If-Match": strong})
        assert changed.status_code == 200, (strong, changed.text)
        await client.post(f"{url}/resume", headers=AUTH)


async def test_a_repeated_idempotency_key_replays_the_first_response(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    first = await create(client, CRON, **{"Idempotency-Key": "create-standup"})
    again = await client.post(
        "/tasks", json=CRON, headers={**AUTH, "Idempotency-Key": "create-standup"}
    )
    assert again.status_code == 201
    assert again.json() == first
    assert await count(pool, "task.created") == 1


async def test_create_with_a_key_updates_the_same_task(client: AsyncTestClient[Any]) -> None:
    first = await create(client, {**CRON, "key": "standup"})
    again = await client.post(
        "/tasks", json={**CRON, "key": "standup", "priority": 2}, headers=AUTH
    )
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert again.json()["definition"]["priority"] == 2


async def test_restating_a_keyed_task_unchanged_records_nothing(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    daily = {**CRON, "schedule_kind": "rrule", "schedule_expr": "FREQ=DAILY;BYHOUR=9"}
    first = await create(client, {**daily, "key": "daily"})  # its anchor is fixed here
    again = await client.post("/tasks", json={**daily, "key": "daily"}, headers=AUTH)
    assert again.status_code == 200, again.text
    assert again.json()["version"] == first["version"]
    assert await count(pool, "task.updated") == 0
    changed = await client.post(
        "/tasks", json={**daily, "key": "daily", "priority": 2}, headers=AUTH
    )
    assert changed.json()["definition"]["dtstart"] == first["definition"]["dtstart"]
    (updated,) = await pool.fetch("SELECT data FROM events WHERE type = 'task.updated'")
    assert msgspec.json.decode(updated["data"])["changed"] == ["priority"]


async def test_concurrent_creates_with_one_key_make_one_task_and_update_it(
    database_url: str, redis_url: str, pool: asyncpg.Pool
) -> None:
    # Served by uvicorn: litestar's test client would run the requests one after another.
    # Some restate the task as it is, some change it: every one is about the same task.
    bodies = [{**CRON, "key": "race-key", "priority": 1 + n % 3} for n in range(20)]
    async with api_client(database_url, redis_url) as served:
        responses = await asyncio.gather(
            *(served.post("/tasks", json=body, headers=AUTH) for body in bodies)
        )
    codes = sorted(response.status_code for response in responses)
    assert codes == [200] * 19 + [201], [r.text for r in responses if r.status_code != 200]
    assert len({response.json()["id"] for response in responses}) == 1
    assert await pool.fetchval("SELECT count(*) FROM task WHERE key = 'race-key'") == 1
    assert await count(pool, "task.created") == 1


async def test_patching_a_key_that_another_task_holds_is_a_conflict(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    await create(client, {**CRON, "key": "standup"})
    other = await create(client, CRON)
    events = await pool.fetchval("SELECT count(*) FROM events")
    response = await client.patch(f"/tasks/{other['id']}", json={"key": "standup"}, headers=AUTH)
    assert response.status_code == 409, response.text
    assert response.json()["errors"][0]["field"] == "key"
    assert await pool.fetchval("SELECT count(*) FROM events") == events


async def test_listing_is_paginated_and_filtered(client: AsyncTestClient[Any]) -> None:
    ids = [(await create(client, {**CRON, "title": f"Task {n}"}))["id"] for n in range(5)]
    await client.post(f"/tasks/{ids[0]}/pause", headers=AUTH)
    page = (await client.get("/tasks?limit=2", headers=AUTH)).json()
    seen = [t["id"] for t in page["items"]]
    while page["next"]:
        page = (await client.get(f"/tasks?limit=2&cursor={page['next']}", headers=AUTH)).json()
        seen += [t["id"] for t in page["items"]]
    assert seen == ids
    paused = (await client.get("/tasks?status=paused", headers=AUTH)).json()
    assert [t["id"] for t in paused["items"]] == [ids[0]]
    titled = (await client.get("/tasks?q=task 3", headers=AUTH)).json()
    assert [t["id"] for t in titled["items"]] == [ids[3]]
    crons = (await client.get("/tasks?schedule_kind=cron&status=active", headers=AUTH)).json()
    assert [t["id"] for t in crons["items"]] == ids[1:]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/tasks?status=bogus", "status"),
        ("/tasks?status=deleted", "status"),
        ("/tasks?schedule_kind=bogus", "schedule_kind"),
        ("/runs?status=bogus", "status"),
        ("/events?type=bogus.type", "type"),
    ],
)
async def test_every_enumerated_list_filter_refuses_a_value_it_cannot_hold(
    client: AsyncTestClient[Any], path: str, field: str
) -> None:
    response = await client.get(path, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_an_id_filter_that_names_no_task_is_an_empty_page_well_formed_or_not(
    client: AsyncTestClient[Any],
) -> None:
    await client.post(f"/tasks/{(await create(client, CRON))['id']}/run_now", headers=AUTH)
    for task_id in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        response = await client.get("/runs", params={"task_id": task_id}, headers=AUTH)
        assert response.status_code == 200, response.text
        assert response.json() == {"items": [], "next": None}


def _nested_foreach(depth: int) -> dict[str, Any]:
    body = [{"id": "leaf", "uses": "x"}] if depth == 1 else [_nested_foreach(depth - 1)]
    return {
        "id": f"loop{depth}",
        "uses": "pipeline.foreach",
        "with": {"items_path": "params.items", "body": body},
    }


BAD = [
    ({**CRON, "schedule_expr": "61 * * * *"}, "schedule_expr"),
    ({**CRON, "schedule_expr": "* * * * 8"}, "schedule_expr"),
    ({**CRON, "timezone": "Europe/Atlantis"}, "timezone"),
    ({**RRULE, "schedule_expr": "FREQ=DAILY;INTERVAL=0"}, "schedule_expr"),
    ({**CRON, "schedule_kind": "once", "schedule_expr": "2001-01-01T00:00:00Z"}, "schedule_expr"),
    ({**CRON, "schedule_kind": "hourly"}, "schedule_kind"),
    ({**CRON, "schedule_exp": "x"}, "schedule_exp"),
    ({**CRON, "priority": 0}, "priority"),
    ({**CRON, "priority": 10}, "priority"),
    ({**CRON, "max_retries": 101}, "max_retries"),
    ({**CRON, "jitter_seconds": -1}, "jitter_seconds"),
    ({**CRON, "title": ""}, "title"),
    ({**CRON, "title": 5}, "title"),
    ({**CRON, "payload": []}, "payload"),
    (
        {
            **CRON,
            "payload": {
                "pipeline": [
                    {"id": "a", "uses": "x", "with": {"t": "${steps.b.v}"}},
                    {"id": "b", "uses": "y"},
                ]
            },
        },
        "payload.pipeline[0].with.t",
    ),
    ({**CRON, "payload": {"pipeline": [{"id": "a"}]}}, "payload.pipeline[0].uses"),
    ({**CRON, "payload": {"pipelines": []}}, "payload.pipelines"),
    ({**CRON, "schedule_expr": "@reboot"}, "schedule_expr"),
    ({**CRON, "schedule_expr": "* * 31 2 *"}, "schedule_expr"),
    ({**CRON, "schedule_expr": "garbage"}, "schedule_expr"),
    ({**CRON, "schedule_expr": "*/0 * * * *"}, "schedule_expr"),
    ({**CRON, "schedule_expr": ""}, "schedule_expr"),
    ({**RRULE, "schedule_expr": "FREQ=SOMETIMES"}, "schedule_expr"),
    ({**RRULE, "schedule_expr": "FREQ=DAILY;COUNT=3;UNTIL=20300101T000000Z"}, "schedule_expr"),
    ({**RRULE, "schedule_expr": "FREQ=YEARLY;BYMONTH=13"}, "schedule_expr"),
    ({**RRULE, "schedule_expr": "FREQ=WEEKLY;BYDAY=1MO"}, "schedule_expr"),
    ({**RRULE, "schedule_expr": "FREQ=DAILY;BYDAY=XX"}, "schedule_expr"),
    ({**CRON, "schedule_kind": "once", "schedule_expr": "tomorrow at nine"}, "schedule_expr"),
    ({**CRON, "schedule_kind": "once", "schedule_expr": "2030-01-01"}, "schedule_expr"),
    ({**CRON, "schedule_kind": "event", "schedule_expr": "has spaces"}, "schedule_expr"),
    ({**CRON, "timezone": "EST5EDT_nope"}, "timezone"),
    ({**CRON, "timezone": ""}, "timezone"),
    ({**CRON, "timezone": 3}, "timezone"),
    ({**CRON, "priority": "high"}, "priority"),
    ({**CRON, "priority": 1.5}, "priority"),
    ({**CRON, "max_retries": -1}, "max_retries"),
    ({**CRON, "dedupe_window_seconds": 10**12}, "dedupe_window_seconds"),
    ({**CRON, "backoff_strategy": "random"}, "backoff_strategy"),
    ({**CRON, "misfire_policy": "sometimes"}, "misfire_policy"),
    ({**CRON, "metadata": {"k": 5}}, "metadata[...]"),  # msgspec's path for a mapping value
    ({**CRON, "dtstart": "not a date"}, "dtstart"),
    (
        {
            **CRON,
            "schedule_kind": "once",
            "schedule_expr": "2099-01-01T09:00:00Z",
            "dtstart": "2099-01-01T00:00:00Z",
        },
        "dtstart",
    ),
    ({**CRON, "title": "x" * 201}, "title"),
    ({k: v for k, v in CRON.items() if k != "title"}, "title"),
    (
        {**CRON, "payload": {"pipeline": [{"id": "a", "uses": "x", "timeout_seconds": -1}]}},
        "payload.pipeline[0].timeout_seconds",
    ),
    (
        {**CRON, "payload": {"pipeline": [{"id": "a", "uses": "x", "on_error": "explode"}]}},
        "payload.pipeline[0].on_error",
    ),
    (
        {**CRON, "payload": {"pipeline": [{"id": "a", "uses": "x", "with": {"v": "${nope.[}"}}]}},
        "payload.pipeline[0].with.v",
    ),
    ({**CRON, "payload": {"pipeline": [{"id": "a b", "uses": "x"}]}}, "payload.pipeline[0].id"),
    (
        {**CRON, "payload": {"pipeline": [{"id": "a", "uses": "x", "if": "${steps.z.ok}"}]}},
        "payload.pipeline[0].if",
    ),
    ({**CRON, "payload": {"params": []}}, "payload.params"),
    (
        {**CRON, "payload": {"pipeline": [{"id": f"s{i}", "uses": "x"} for i in range(201)]}},
        "payload.pipeline",
    ),
    (
        {**CRON, "payload": {"pipeline": [_nested_foreach(4)]}},
        "payload.pipeline[0].with.body[0].with.body[0].with.body[0].with.body",
    ),
    (
        {
            **CRON,
            "payload": {
                "pipeline": [{"id": "a", "uses": "x", "with": {"t": "${params.a}" + "x" * 4000}}]
            },
        },
        "payload.pipeline[0].with.t",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "field", "new"),
    [
        ("POST", "/tasks", {**CRON, "kind": "cron"}, "kind", "schedule_kind"),
        ("POST", "/tasks", {"expr": "* * * * *", **CRON}, "expr", "schedule_expr"),
        ("PATCH", "/tasks/{id}", {"tz": "UTC"}, "tz", "timezone"),
        ("PATCH", "/tasks/{id}", {"kind": "rrule"}, "kind", "schedule_kind"),
        ("POST", "/tasks/dry_run", {"task": {**CRON, "tz": "UTC"}}, "task.tz", "timezone"),
        ("POST", "/schedules/preview", {"kind": "cron"}, "kind", "schedule_kind"),
    ],
)
async def test_earlier_spellings_of_schedule_fields_are_refused_naming_the_new_one(
    client: AsyncTestClient[Any],
    pool: asyncpg.Pool,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
    new: str,
) -> None:
    task = await create(client, CRON)
    url = path.format(id=task["id"])
    response = await client.request(method, url, json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [{"field": field, "reason": f"renamed {new}"}]
    assert await count(pool) == 1  # the task.created above, nothing else


async def test_a_field_renamed_elsewhere_is_only_unknown_where_the_new_name_is_not_a_field(
    client: AsyncTestClient[Any],
) -> None:
    body = {"topic": "a", "payload": {}, "kind": "x"}
    response = await client.post("/events", json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "kind"
    assert "unknown field" in response.json()["errors"][0]["reason"]


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"{not json", 400),
        (b'{"title": "x"', 400),
        (b"", 400),
        (b'{"title": "' + b"a" * (2 * 1024 * 1024) + b'"}', 413),
    ],
)
async def test_malformed_and_oversize_bodies_are_refused(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, content: bytes, status: int
) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    response = await client.post("/tasks", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert await count(pool) == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/tasks/no-such-task"),
        ("PATCH", "/tasks/00000000-0000-0000-0000-000000000000"),
        ("POST", "/tasks/%00/pause"),
        ("DELETE", "/tasks/x"),
        ("GET", "/tasks/x/occurrences"),
        ("POST", "/tasks/x/run_now"),
    ],
)
async def test_bad_or_unknown_ids_are_404(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, method: str, path: str
) -> None:
    body = {"title": "x"} if method == "PATCH" else None
    response = await client.request(method, path, headers=AUTH, json=body)
    assert response.status_code == 404, response.text
    assert await count(pool) == 0


@pytest.mark.parametrize(("body", "field"), BAD)
async def test_bad_tasks_are_refused_naming_the_field(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/tasks", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    assert await count(pool) == 0


async def test_a_cron_task_with_a_dtstart_first_runs_on_or_after_it(
    client: AsyncTestClient[Any],
) -> None:
    task = await create(client, {**CRON, "dtstart": "2028-01-03T00:00:00"})  # a Monday
    assert task["next_run_at"] == "2028-01-03T06:30:00Z"  # 08:30 in Chisinau (UTC+2)
