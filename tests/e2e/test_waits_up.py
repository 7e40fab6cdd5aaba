"""Durable waits on `ordinaut up`: a run waits for its event through a SIGKILL and a restart
of the whole service, an unrelated event leaves it waiting, a timeout takes its default, and
a waiting run can be canceled."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

WAIT_FOR_REPLY = [
    {"id": "send", "uses": "debug.echo", "with": {"message_id": "m-${params.n}"}},
    {
        "id": "reply",
        "uses": "orchestrator.wait_for_event",
        "with": {
            "topic": "mail.reply",
            "timeout_seconds": 600,
            "filter": "event.payload.in_reply_to == '${steps.send.message_id}'",
        },
    },
    {"id": "file", "uses": "debug.echo", "with": {"text": "${steps.reply.payload.text}"}},
]
WAIT_BRIEFLY = [
    {
        "id": "reply",
        "uses": "orchestrator.wait_for_event",
        "with": {
            "topic": "mail.reply",
            "timeout_seconds": 1,
            "on_timeout": "default",
            "filter": "event.payload.in_reply_to == 'm-${params.n}'",
            "default": {"text": "no reply"},
        },
    },
    {"id": "file", "uses": "debug.echo", "with": {"text": "${steps.reply.text}"}},
]


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def task_run(api: httpx.AsyncClient, pipeline: list[dict[str, Any]], n: int) -> str:
    body = {
        "title": "waits",
        "schedule_kind": "cron",
        "schedule_expr": "0 0 1 1 *",
        "payload": {"pipeline": pipeline, "params": {"n": n}},
    }
    task = await ok(await api.post("/tasks", json=body), 201)
    return str((await ok(await api.post(f"/tasks/{task['id']}/run_now"), 202))["run_id"])


async def status_of(api: httpx.AsyncClient, run_id: str, wanted: str) -> dict[str, Any]:
    for _ in range(300):
        run = await ok(await api.get(f"/runs/{run_id}"))
        if run["status"] == wanted:
            return run  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} is {run['status']}, not {wanted}: {run}")


async def publish(api: httpx.AsyncClient, n: int, text: str) -> Any:
    body = {"topic": "mail.reply", "payload": {"in_reply_to": f"m-{n}", "text": text}}
    return await ok(await api.post("/events", json=body), 202)


@pytest.mark.timeout(180)
async def test_a_waiting_run_survives_a_killed_service_and_resumes_on_its_event(
    tmp_path: Path, start_service: Any, database_url: str, redis_url: str
) -> None:
    env = {
        "ORDINAUT_DATABASE_URL": database_url,
        "ORDINAUT_REDIS_URL": redis_url,
        "ORDINAUT_WORKER_POLL_SECONDS": "0.2",
    }
    first = start_service(tmp_path / "data", env)
    await first.wait_ready()
    async with first.client() as api:
        waiter = await task_run(api, WAIT_FOR_REPLY, 1)
        doomed = await task_run(api, WAIT_FOR_REPLY, 2)
        brief = await task_run(api, WAIT_BRIEFLY, 3)
        waiting = await status_of(api, waiter, "waiting")
        assert waiting["wait"]["filter"] == "event.payload.in_reply_to == 'm-1'"
        assert (await publish(api, 9, "for someone else"))["resumed_runs"] == []
        timed_out = await status_of(api, brief, "succeeded")
        assert timed_out["steps"][-1]["output"] == {"text": "no reply"}
        await status_of(api, doomed, "waiting")
    first.process.kill()  # SIGKILL: the worker inside holds nothing for the waiting runs
    first.process.wait()

    second = start_service(tmp_path / "data", env)
    await second.wait_ready()
    async with second.client() as api:
        assert (await status_of(api, waiter, "waiting"))["worker"] is None
        canceled = await ok(await api.post(f"/runs/{doomed}/cancel"))
        assert canceled["status"] == "canceled"
        reply = await publish(api, 1, "yes")
        assert reply["resumed_runs"] == [waiter]
        done = await status_of(api, waiter, "succeeded")
        assert (await publish(api, 2, "too late"))["resumed_runs"] == []
        history = (await ok(await api.get(f"/runs/{waiter}/history")))["items"]
    steps = {step["id"]: step for step in done["steps"]}
    assert steps["reply"]["output"]["event_id"] == reply["id"]
    assert steps["file"]["output"] == {"text": "yes"}
    types = [event["type"] for event in history]
    assert types.count("run.waiting") == 1
    assert types.count("run.resumed") == 1
    assert second.stop() == 0
