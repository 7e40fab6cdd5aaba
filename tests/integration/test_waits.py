"""Durable waits through the API and in-process workers: wait_for_event and sleep."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from services.health.report import report
from tests.ui_client import agent_token, signed_in
from tests.workers import (
    ADMIN,
    AUTH,
    api_client,
    create_task,
    get_run,
    of_type,
    run_events,
    run_in,
    run_now,
    run_to_end,
    running_workers,
)


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(database_url, redis_url) as test_client:
        yield test_client


SEND_AND_WAIT = [
    {"id": "send", "uses": "debug.echo", "with": {"message_id": "m-${params.n}"}},
    {
        "id": "reply",
        "uses": "orchestrator.wait_for_event",
        "with": {
            "topic": "mail.*",
            "filter": "event.payload.in_reply_to == '${steps.send.message_id}'",
            "timeout_seconds": 120,
        },
    },
    {"id": "file", "uses": "debug.echo", "with": {"text": "${steps.reply.payload.text}"}},
]


async def publish(client: httpx.AsyncClient, topic: str, payload: dict[str, Any]) -> Any:
    response = await client.post("/events", json={"topic": topic, "payload": payload}, headers=AUTH)
    assert response.status_code == 202, response.text
    return response.json()


def step(run: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in run["steps"] if s["id"] == step_id)


async def test_a_run_waits_for_its_reply_and_resumes_with_it(
    client: httpx.AsyncClient, database_url: str, redis_url: str, pool: asyncpg.Pool
) -> None:
    task = await create_task(client, SEND_AND_WAIT)
    run_id = await run_now(client, task["id"])
    async with running_workers(database_url, redis_url):
        waiting = await run_in(client, run_id, ("waiting",))
        assert waiting["wait"]["topic"] == "mail.*"
        assert waiting["wait"]["filter"] == "event.payload.in_reply_to == 'm-3'"
        assert waiting["worker"] is None
        assert step(waiting, "reply")["status"] == "waiting"
        # not the reply it waits for: another message's, and another topic
        other = await publish(client, "mail.reply", {"in_reply_to": "m-4", "text": "no"})
        assert other["resumed_runs"] == []
        await publish(client, "chat.reply", {"in_reply_to": "m-3", "text": "no"})
        await asyncio.sleep(0.5)
        assert (await get_run(client, run_id))["status"] == "waiting"
        reply = await publish(client, "mail.reply", {"in_reply_to": "m-3", "text": "yes"})
        assert reply["resumed_runs"] == [run_id]
        done = await run_to_end(client, run_id)
    assert done["status"] == "succeeded", done
    assert step(done, "reply")["output"]["event_id"] == reply["id"]
    assert step(done, "reply")["output"]["payload"] == {"in_reply_to": "m-3", "text": "yes"}
    assert step(done, "file")["output"] == {"text": "yes"}
    assert done["wait"]["status"] == "resumed"
    types = [e["type"] for e in await run_events(pool, run_id)]
    assert types.count("run.waiting") == 1
    assert types.count("run.resumed") == 1


async def test_an_event_published_before_the_wait_began_is_not_lost(
    client: httpx.AsyncClient, database_url: str, redis_url: str
) -> None:
    pipeline = [
        {
            "id": "announce",
            "uses": "orchestrator.publish_event",
            "with": {"topic": "job.done", "payload": {"job": "${run.id}"}},
        },
        {
            "id": "done",
            "uses": "orchestrator.wait_for_event",
            "with": {"topic": "job.done", "filter": "event.payload.job == run.id"},
        },
    ]
    task = await create_task(client, pipeline)
    run_id = await run_now(client, task["id"])
    async with running_workers(database_url, redis_url):
        done = await run_to_end(client, run_id)
    assert done["status"] == "succeeded", done
    assert step(done, "done")["output"]["payload"] == {"job": run_id}


async def test_a_wait_times_out_to_its_default_or_fails(
    client: httpx.AsyncClient, database_url: str, redis_url: str
) -> None:
    waiting = {"topic": "never", "timeout_seconds": 0.5}
    with_default = await create_task(
        client,
        [
            {
                "id": "w",
                "uses": "orchestrator.wait_for_event",
                "with": {**waiting, "on_timeout": "default", "default": {"text": "none"}},
            },
            {"id": "after", "uses": "debug.echo", "with": {"got": "${steps.w.text}"}},
        ],
    )
    failing = await create_task(
        client,
        [
            {"id": "w", "uses": "orchestrator.wait_for_event", "with": waiting},
        ],
    )
    first = await run_now(client, with_default["id"])
    second = await run_now(client, failing["id"])
    async with running_workers(database_url, redis_url):
        defaulted = await run_to_end(client, first)
        failed = await run_to_end(client, second)
    assert defaulted["status"] == "succeeded", defaulted
    assert step(defaulted, "after")["output"] == {"got": "none"}
    assert defaulted["wait"]["status"] == "timed_out"
    assert failed["status"] == "dead", failed
    assert "timed out waiting for an event on 'never'" in failed["error"]
    # a retry waits again (and times out again), rather than failing on the old timeout
    async with running_workers(database_url, redis_url):
        retried = await client.post(f"/runs/{second}/retry", headers=AUTH)
        assert retried.status_code == 200, retried.text
        await run_in(client, second, ("waiting",))
        again = await run_to_end(client, second)
    assert (again["status"], again["attempt"]) == ("dead", 2)


async def test_a_waiting_run_is_shown_and_can_be_canceled(
    client: httpx.AsyncClient, database_url: str, redis_url: str, pool: asyncpg.Pool
) -> None:
    task = await create_task(client, SEND_AND_WAIT)
    run_id = await run_now(client, task["id"])
    async with running_workers(database_url, redis_url):
        await run_in(client, run_id, ("waiting",))
        async with signed_in(client, ADMIN) as ui:
            overview = (await ui.get("/ui")).text
            page = (await ui.get(f"/ui/runs/{run_id}")).text
        await report(pool, None)  # what /metrics serves is sampled here
        assert "Waiting for an event or a time" in overview
        assert f'data-run-id="{run_id}"' in overview
        assert 'data-testid="wait"' in page
        assert "event.payload.in_reply_to == &#39;m-3&#39;" in page
        assert "Cancel run" in page
        assert REGISTRY.get_sample_value("ordinaut_runs_waiting") == 1
        canceled = await client.post(f"/runs/{run_id}/cancel", headers=AUTH)
        assert canceled.status_code == 200, canceled.text
        assert canceled.json()["status"] == "canceled"
        reply = await publish(client, "mail.reply", {"in_reply_to": "m-3", "text": "late"})
    assert reply["resumed_runs"] == []
    assert (await get_run(client, run_id))["status"] == "canceled"


async def test_a_sleep_parks_the_run_without_a_lease_and_wakes_it(
    client: httpx.AsyncClient, database_url: str, redis_url: str, pool: asyncpg.Pool
) -> None:
    task = await create_task(
        client,
        [
            {"id": "nap", "uses": "orchestrator.sleep", "with": {"seconds": 1}},
            {"id": "after", "uses": "debug.echo", "with": {"woke": "${steps.nap.until}"}},
        ],
    )
    run_id = await run_now(client, task["id"])
    async with running_workers(database_url, redis_url):
        waiting = await run_in(client, run_id, ("waiting",))
        assert waiting["wait"]["kind"] == "sleep"
        held = await pool.fetchval("SELECT locked_by FROM due_work WHERE run_id = $1", run_id)
        assert held is None
        done = await run_to_end(client, run_id)
    assert done["status"] == "succeeded", done
    events = await run_events(pool, run_id)
    (woke,) = of_type(events, "run.resumed")
    (slept,) = of_type(events, "run.waiting")
    assert woke["at"] >= datetime.fromisoformat(slept["until"])
    assert len(of_type(events, "run.started")) == 2


async def test_a_two_second_sleep_across_a_worker_restart_wakes_once_on_time(
    client: httpx.AsyncClient, database_url: str, redis_url: str, pool: asyncpg.Pool
) -> None:
    task = await create_task(
        client,
        [
            {"id": "nap", "uses": "orchestrator.sleep", "with": {"seconds": 2}},
            {"id": "after", "uses": "debug.echo", "with": {"n": "${params.n}"}},
        ],
    )
    run_id = await run_now(client, task["id"])
    async with running_workers(database_url, redis_url):
        await run_in(client, run_id, ("waiting",))
    # the first worker is gone; a new one takes over the sleeping run
    async with running_workers(database_url, redis_url) as (worker,):
        done = await run_to_end(client, run_id)
        poll = worker.config.poll_seconds
    assert done["status"] == "succeeded", done
    events = await run_events(pool, run_id)
    (slept,) = of_type(events, "run.waiting")
    (woke,) = of_type(events, "run.resumed")
    until = datetime.fromisoformat(slept["until"])
    late = (woke["at"] - until).total_seconds()
    # the leasing worker wakes it on its next poll after the deadline (plenty of slack for a
    # loaded machine: the point is "not early, not a poll loop's worth of seconds late")
    assert 0 <= late < poll + 2.0, late
    assert [e["type"] for e in events].count("run.step_succeeded") == 1


async def test_a_sleep_until_an_instant_from_a_template(
    client: httpx.AsyncClient, database_url: str, redis_url: str, pool: asyncpg.Pool
) -> None:
    task = await create_task(
        client,
        [
            {"id": "nap", "uses": "orchestrator.sleep", "with": {"until": "${now+1s}"}},
        ],
    )
    run_id = await run_now(client, task["id"])
    async with running_workers(database_url, redis_url):
        done = await run_to_end(client, run_id)
    assert done["status"] == "succeeded", done
    (slept,) = of_type(await run_events(pool, run_id), "run.waiting")
    woke = datetime.fromisoformat(done["steps"][0]["output"]["until"])
    assert woke == datetime.fromisoformat(slept["until"])


async def test_only_the_owners_and_the_admins_events_resume_an_agents_run(
    client: httpx.AsyncClient, database_url: str, redis_url: str
) -> None:
    scopes = ["tasks:read", "tasks:write", "runs:read", "events:publish"]
    _, alice = await agent_token(client, "alice", scopes)
    _, mallory = await agent_token(client, "mallory", scopes)
    body = {
        "title": "t",
        "schedule_kind": "cron",
        "schedule_expr": "0 0 1 1 *",
        "payload": {
            "pipeline": [
                {"id": "w", "uses": "orchestrator.wait_for_event", "with": {"topic": "go"}}
            ]
        },
    }

    async def as_agent(token: str, method: str, url: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        response = await client.request(method, url, headers=headers, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    task = await as_agent(alice, "POST", "/tasks", json=body)
    first = (await as_agent(alice, "POST", f"/tasks/{task['id']}/run_now"))["run_id"]
    second = (await as_agent(alice, "POST", f"/tasks/{task['id']}/run_now"))["run_id"]
    async with running_workers(database_url, redis_url):
        await run_in(client, first, ("waiting",))
        await run_in(client, second, ("waiting",))
        event = {"topic": "go", "payload": {}}
        assert (await as_agent(mallory, "POST", "/events", json=event))["resumed_runs"] == []
        mine = await as_agent(alice, "POST", "/events", json=event)
        assert len(mine["resumed_runs"]) == 2
        await run_to_end(client, first)
        await run_to_end(client, second)


async def test_a_sleep_ending_in_quiet_hours_wakes_when_they_end(
    client: httpx.AsyncClient, database_url: str, redis_url: str, pool: asyncpg.Pool
) -> None:
    now = datetime.now(UTC)
    start, end = (now - timedelta(minutes=5)).time(), (now + timedelta(minutes=10)).time()
    quiet = [{"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}]
    task = await create_task(
        client,
        [
            {"id": "nap", "uses": "orchestrator.sleep", "with": {"seconds": 1}},
        ],
        quiet_hours=quiet,
    )
    run_id = await run_now(client, task["id"])
    async with running_workers(database_url, redis_url):
        waiting = await run_in(client, run_id, ("waiting",))
    until = datetime.fromisoformat(waiting["wait"]["until"])
    window_end = datetime.combine(now.date(), end.replace(second=0, microsecond=0), UTC)
    if window_end < now:  # the window crosses midnight
        window_end += timedelta(days=1)
    assert until == window_end
    assert (await client.post(f"/runs/{run_id}/cancel", headers=AUTH)).status_code == 200
