"""Reading the log for audits: filters on GET /events, and the history of a run."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from domain.envelope import EventMeta
from domain.events import EventReceived
from services.api.app import ApiConfig, create_app
from services.runtime.admin_token import token_hash
from services.store.events import StreamAppend, append_in_transaction
from tests.relay_support import PROJECTIONS

ADMIN = "admin-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(ApiConfig(database_url, redis_url, token_hash(ADMIN)))
    async with AsyncTestClient(app) as test_client:
        yield test_client


async def _append(pool: asyncpg.Pool, stream: str, topic: str, actor: str, correlation: str) -> int:
    event = EventReceived(event_id=str(uuid.uuid4()), topic=topic, payload={})
    async with pool.acquire() as conn, conn.transaction():
        meta = EventMeta(actor=actor, correlation_id=correlation)
        result = await append_in_transaction(
            conn, [StreamAppend(stream, [event])], meta, PROJECTIONS
        )
    return result.first_position


@pytest.fixture
async def log(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """Twelve events over three streams, two actors and two correlation ids."""
    made = []
    for i in range(12):
        stream, actor, correlation = f"s{i % 3}", f"actor{i % 2}", f"c{i // 6}"
        position = await _append(pool, stream, f"t{i % 4}", actor, correlation)
        made.append({"position": position, "stream": stream, "actor": actor, "c": correlation})
    return made


async def _positions(client: AsyncTestClient[Any], **params: Any) -> list[int]:
    response = await client.get("/events", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return [item["position"] for item in response.json()["items"]]


async def test_filters_select_the_matching_events_in_position_order(
    client: AsyncTestClient[Any], log: list[dict[str, Any]], pool: asyncpg.Pool
) -> None:
    positions = [e["position"] for e in log]
    assert await _positions(client) == positions
    assert await _positions(client, stream="s1") == [
        e["position"] for e in log if e["stream"] == "s1"
    ]
    assert await _positions(client, actor="actor0") == positions[0::2]
    assert await _positions(client, correlation_id="c1") == positions[6:]
    assert await _positions(client, after=positions[2], before=positions[5]) == positions[3:5]
    both = await _positions(client, stream="s0", actor="actor1")
    assert both == [e["position"] for e in log if e["stream"] == "s0" and e["actor"] == "actor1"]
    assert await _positions(client, type="run.dead") == []  # a type the log has none of

    recorded = {r["position"]: r["recorded_at"] for r in await pool.fetch("SELECT * FROM events")}
    since, until = recorded[positions[4]], recorded[positions[7]]
    window = await _positions(client, since=since.isoformat(), until=until.isoformat())
    assert window == positions[4:8]


async def test_type_may_repeat_or_be_a_comma_list(
    client: AsyncTestClient[Any], log: list[dict[str, Any]]
) -> None:
    response = await client.get("/events?type=event.received&type=run.dead", headers=AUTH)
    assert len(response.json()["items"]) == 12
    listed = await client.get("/events?type=run.dead,event.received", headers=AUTH)
    assert len(listed.json()["items"]) == 12
    none = await client.get("/events?type=run.dead,task.created", headers=AUTH)
    assert none.json()["items"] == []


async def test_filtered_pages_follow_next(
    client: AsyncTestClient[Any], log: list[dict[str, Any]]
) -> None:
    expected = [e["position"] for e in log if e["actor"] == "actor1"]
    seen: list[int] = []
    after = 0
    while True:
        page = (
            await client.get(
                "/events", params={"actor": "actor1", "limit": 2, "after": after}, headers=AUTH
            )
        ).json()
        seen += [item["position"] for item in page["items"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert seen == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("after=-1", "after"),
        ("after=abc", "after"),
        ("before=0", "before"),
        ("before=x", "before"),
        ("limit=0", "limit"),
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("since=2026-01-01T00:00:00", "since"),
        ("type=has%20space", "type"),
        ("type=x.y", "type"),  # no event has this type: a typo, named rather than an empty page
        ("type=event.received,x.y", "type"),
        ("stream=", "stream"),
    ],
)
async def test_invalid_filters_are_problems_naming_the_parameter(
    client: AsyncTestClient[Any], query: str, field: str
) -> None:
    response = await client.get(f"/events?{query}", headers=AUTH)
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.json()["detail"], response.json()


async def test_a_time_window_with_offsets_is_read_in_utc(
    client: AsyncTestClient[Any], log: list[dict[str, Any]]
) -> None:
    future = (datetime.now().astimezone() + timedelta(hours=1)).isoformat()
    assert await _positions(client, since=future) == []


async def test_run_history_lists_the_runs_events_and_404s_otherwise(
    client: AsyncTestClient[Any],
) -> None:
    body = {
        "title": "t",
        "schedule_kind": "cron",
        "schedule_expr": "0 0 1 1 *",
        "payload": {"pipeline": [{"id": "a", "uses": "debug.echo"}]},
    }
    task = (await client.post("/tasks", json=body, headers=AUTH)).json()
    run_id = (await client.post(f"/tasks/{task['id']}/run_now", headers=AUTH)).json()["run_id"]
    response = await client.get(f"/runs/{run_id}/history", headers=AUTH)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["type"] for item in items] == ["run.queued"]
    assert {item["stream"] for item in items} == {f"run-{run_id}"}
    for unknown in (str(uuid.uuid4()), "not-a-uuid"):
        missing = await client.get(f"/runs/{unknown}/history", headers=AUTH)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
