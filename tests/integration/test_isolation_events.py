"""Issue 18, finding 5: an agent reads only its own events (API and dashboard).

Two agents each cause every kind of event an agent can: task commands, runs that succeed,
die and wait for approvals, published events firing event and condition tasks, webhook
deliveries, and what the admin does to the agent (limits, tokens, scopes). Then each reads
the whole log, page by page: nothing of the other agent's, all of its own, and never a token
hash or a secret's ciphertext.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from domain.envelope import EventMeta
from domain.events import WebhookAttempted, WebhookDelivered, WebhookFailed, webhook_stream
from projections.registry import inline_projections
from services.store.events import StreamAppend, append_in_transaction
from tests.ui_client import ALL_SCOPES, agent_token, signed_in
from tests.workers import AUTH, api_client, eventually, run_in, run_to_end, running_workers

ECHO = [{"id": "echo", "uses": "debug.echo", "with": {"secret_input": "${params.who}"}}]
ASK = [{"id": "ask", "uses": "orchestrator.request_approval", "with": {"message": "Ship?"}}]
BROKEN = [{"id": "bad", "uses": "http.request", "with": {"url": "http://127.0.0.1:1/"}}]


@dataclass
class Footprint:
    """What one agent did: ids that must never show up in another agent's reads."""

    agent_id: str
    token: str
    ids: set[str] = field(default_factory=set)
    run_ids: list[str] = field(default_factory=list)


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(database_url, redis_url) as test_client:
        yield test_client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _task(client: httpx.AsyncClient, who: Footprint, **body: Any) -> str:
    base = {
        "title": f"task of {who.agent_id}",
        "schedule_kind": "cron",
        "schedule_expr": "0 0 1 1 *",
        "payload": {"params": {"who": who.agent_id}},
    }
    response = await client.post("/tasks", json={**base, **body}, headers=_bearer(who.token))
    assert response.status_code == 201, response.text
    task_id = str(response.json()["id"])
    who.ids.add(task_id)
    return task_id


async def _run_now(client: httpx.AsyncClient, who: Footprint, task_id: str) -> str:
    response = await client.post(f"/tasks/{task_id}/run_now", headers=_bearer(who.token))
    assert response.status_code == 202, response.text
    run_id = str(response.json()["run_id"])
    who.ids.add(run_id)
    who.run_ids.append(run_id)
    return run_id


async def _ok(response: httpx.Response) -> None:
    assert response.status_code < 300, response.text


async def _act(client: httpx.AsyncClient, pool: asyncpg.Pool, who: Footprint) -> None:
    auth, agent = _bearer(who.token), who.agent_id
    # The admin's doings on the agent: its limits, a second token revoked, new scopes.
    await _ok(await client.put(f"/agents/{agent}/limits", headers=AUTH, json={"budget_per_day": 5}))
    spare = (await client.post(f"/agents/{agent}/tokens", headers=AUTH, json={})).json()
    await _ok(await client.delete(f"/agents/{agent}/tokens/{spare['id']}", headers=AUTH))
    await _ok(await client.patch(f"/agents/{agent}", headers=AUTH, json={"scopes": ALL_SCOPES}))
    # Task commands.
    plain = await _task(
        client,
        who,
        payload={"pipeline": ECHO, "params": {"who": agent}},
        dedupe_key="nightly-report",
        concurrency_key="billing-export",
    )
    await _ok(await client.patch(f"/tasks/{plain}", headers=auth, json={"title": "renamed"}))
    await _ok(await client.post(f"/tasks/{plain}/snooze", headers=auth, json={"seconds": 60}))
    await _ok(await client.post(f"/tasks/{plain}/pause", headers=auth))
    await _ok(await client.post(f"/tasks/{plain}/resume", headers=auth))
    ok_run = await _run_now(client, who, plain)
    broken = await _task(client, who, payload={"pipeline": BROKEN}, max_retries=0)
    dead_run = await _run_now(client, who, broken)
    asking = await _task(client, who, payload={"pipeline": ASK})
    approved, rejected = await _run_now(client, who, asking), await _run_now(client, who, asking)
    doomed = await _task(client, who)
    await _ok(await client.post(f"/tasks/{doomed}/cancel", headers=auth))
    gone = await _task(client, who)
    await _ok(await client.delete(f"/tasks/{gone}", headers=auth))
    # Event and condition tasks, fired by the agent's own publications.
    topic = f"sensor.{agent}"
    echo = {"pipeline": ECHO, "params": {"who": agent}}
    await _task(client, who, schedule_kind="event", schedule_expr=topic, payload=echo)
    await _task(
        client,
        who,
        schedule_kind="condition",
        schedule_expr=topic,
        condition="event.payload.t > `30`",
        payload=echo,
    )
    event = {"topic": topic, "payload": {"t": 40, "who": agent}}
    published = await client.post("/events", headers=auth, json=event)
    assert published.status_code == 202, published.text
    who.ids.add(published.json()["id"])
    # The runs, to their ends (or to their approvals).
    await run_to_end(client, ok_run)
    await run_to_end(client, dead_run)
    for run_id, verdict in ((approved, "approve"), (rejected, "reject")):
        await run_in(client, run_id, ("awaiting_approval",))
        await _ok(await client.post(f"/runs/{run_id}/{verdict}", headers=auth, json={}))
        await run_to_end(client, run_id)
    # Webhook deliveries to the agent, as the notifier records them.
    await _webhooks(pool, agent)


async def _webhooks(pool: asyncpg.Pool, agent: str) -> None:
    position = int(await pool.fetchval("SELECT max(position) FROM events"))
    tries = [
        (
            webhook_stream(agent, position),
            [
                WebhookAttempted(
                    agent_id=agent,
                    position=position,
                    event_type="run.succeeded",
                    attempt=1,
                    status=200,
                ),
                WebhookDelivered(agent_id=agent, position=position, attempt=1),
            ],
        ),
        (
            webhook_stream(agent, position - 1),
            [WebhookFailed(agent_id=agent, position=position - 1, attempts=1, error="down")],
        ),
    ]
    async with pool.acquire() as conn, conn.transaction():
        appends = [StreamAppend(stream, list(events)) for stream, events in tries]
        meta = EventMeta(actor="notifier", correlation_id="notifier")
        await append_in_transaction(conn, appends, meta, inline_projections())


async def _read_all(client: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    """The whole log as ``token`` may read it, in small pages."""
    items: list[dict[str, Any]] = []
    after: int | None = 0
    while after is not None:
        page = await client.get(
            "/events", params={"after": after, "limit": 7}, headers=_bearer(token)
        )
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["next"] is None or len(body["items"]) == 7  # pages stay full
        items += body["items"]
        after = body["next"]
    return items


EXPECTED_TYPES = {
    "agent.created",
    "agent.token_issued",
    "agent.token_revoked",
    "agent.limits_set",
    "agent.updated",
    "task.created",
    "task.updated",
    "task.snoozed",
    "task.paused",
    "task.resumed",
    "task.canceled",
    "task.deleted",
    "run.queued",
    "run.started",
    "run.step_succeeded",
    "run.step_failed",
    "run.succeeded",
    "run.dead",
    "approval.requested",
    "approval.granted",
    "approval.rejected",
    "event.received",
    "condition.evaluated",
    "webhook.attempted",
    "webhook.delivered",
    "webhook.failed",
}


async def test_an_agent_reads_none_of_another_agents_events(
    client: httpx.AsyncClient, database_url: str, redis_url: str
) -> None:
    agents = []
    for name in ("agent-a", "agent-b"):
        fewer = [scope for scope in ALL_SCOPES if scope != "runs:approve"]  # granted later
        agent_id, token = await agent_token(client, name, fewer)
        agents.append(Footprint(agent_id, token, {agent_id}))
    a, b = agents
    async with asyncpg.create_pool(database_url, min_size=1, max_size=2) as pool:
        async with running_workers(database_url, redis_url):
            await _act(client, pool, a)
            await _act(client, pool, b)
        for me, other in ((a, b), (b, a)):
            mine = await _read_all(client, me.token)
            text = str(mine)
            assert not [i for i in other.ids if i in text], "another agent's event was served"
            assert "token_sha256" not in text
            assert "ciphertext" not in text
            assert {e["type"] for e in mine} >= EXPECTED_TYPES
            # All of its own: every event of its tasks' and runs' streams.
            own = await pool.fetchval(
                "SELECT count(*) FROM events WHERE stream = ANY($1::text[])",
                [f"{kind}-{i}" for i in me.ids for kind in ("task", "run", "agent", "condition")],
            )
            assert len([e for e in mine if e["stream"].split("-", 1)[1] in me.ids]) == own
            # Asking for the other's stream by name gives nothing.
            for run_id in other.run_ids:
                page = await client.get(
                    "/events", params={"stream": f"run-{run_id}"}, headers=_bearer(me.token)
                )
                assert page.status_code == 200
                assert page.json()["items"] == []
        everything = await client.get("/events", params={"limit": 1000}, headers=AUTH)
        assert all(i in everything.text for i in a.ids | b.ids)  # the admin sees all
        # The dashboard's event browser obeys the same rule.
        async with signed_in(client, a.token) as ui:

            async def listed() -> str | None:
                page = await ui.get("/ui/events")
                return page.text if page.status_code == 200 else None

            html = await eventually(listed)
            assert a.agent_id in html
            assert not [i for i in b.ids if i in html]
            for run_id in b.run_ids:
                page = await ui.get("/ui/events", params={"stream": f"run-{run_id}"})
                rows = page.text.split("<tbody>", 1)[-1].split("</tbody>", 1)[0]
                assert page.status_code == 200
                assert "No events match." in rows
                assert run_id not in rows


async def test_the_migration_files_an_existing_log_as_the_projection_does(
    client: httpx.AsyncClient, database_url: str, redis_url: str
) -> None:
    """0020 fills the ownership tables of a log recorded before them: the same rows."""
    agent_id, token = await agent_token(client, "old-timer", ALL_SCOPES)
    who = Footprint(agent_id, token, {agent_id})
    async with asyncpg.create_pool(database_url, min_size=1, max_size=2) as pool:
        async with running_workers(database_url, redis_url):
            await _act(client, pool, who)
        query = "SELECT {} FROM {} ORDER BY 1, 2"
        live = [
            await pool.fetch(query.format("stream, owner", "stream_owner")),
            await pool.fetch(query.format("owner, position", "event_owner")),
        ]
        sql = (Path(__file__).parents[2] / "migrations" / "0020_ownership.sql").read_text()
        backfill = sql[sql.index("-- The existing log") : sql.index("INSERT INTO projection_")]
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("TRUNCATE stream_owner, event_owner")
            await conn.execute(backfill)
        again = [
            await pool.fetch(query.format("stream, owner", "stream_owner")),
            await pool.fetch(query.format("owner, position", "event_owner")),
        ]
    assert again == live
    assert len(live[1]) > 40


async def test_a_publisher_learns_only_which_of_its_own_tasks_an_event_fired(
    client: httpx.AsyncClient,
) -> None:
    listeners = {}
    for name in ("listener", "prober"):
        agent_id, token = await agent_token(client, name, ALL_SCOPES)
        who = Footprint(agent_id, token)
        listeners[name] = (
            who,
            await _task(client, who, schedule_kind="event", schedule_expr="payments.*"),
        )
    (a, a_task), (b, b_task) = listeners["listener"], listeners["prober"]

    async def fired(headers: dict[str, str]) -> list[str]:
        body = {"topic": "payments.probe", "payload": {}}
        response = await client.post("/events", json=body, headers=headers)
        assert response.status_code == 202, response.text
        return sorted(response.json()["triggered_tasks"])

    assert await fired(_bearer(b.token)) == [b_task]  # the listener's task fired, unnamed
    assert await fired(_bearer(a.token)) == [a_task]
    assert await fired(AUTH) == sorted([a_task, b_task])
