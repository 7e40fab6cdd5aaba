"""An agent drives the running service over HTTP: every change is one event with it as actor."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

AGENT_SCOPES = ["tasks:read", "tasks:write", "events:read"]
SCHEDULES = {
    "cron": {"schedule_kind": "cron", "schedule_expr": "30 8 * * 1-5"},
    "rrule": {"schedule_kind": "rrule", "schedule_expr": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9"},
    "once": {"schedule_kind": "once", "schedule_expr": "2099-06-01T09:00:00"},
    "event": {"schedule_kind": "event", "schedule_expr": "calendar.*"},
}


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


@pytest.mark.timeout(180)
async def test_an_agent_schedules_and_steers_its_tasks(
    tmp_path: Path, start_service: Any, database_url: str, redis_url: str
) -> None:
    env = {"ORDINAUT_DATABASE_URL": database_url, "ORDINAUT_REDIS_URL": redis_url}
    service = start_service(tmp_path / "data", env)
    await service.wait_ready()
    async with service.client() as admin:
        agent = await ok(
            await admin.post("/agents", json={"name": "assistant", "scopes": AGENT_SCOPES}), 201
        )
        token = await ok(
            await admin.post(f"/agents/{agent['id']}/tokens", json={"label": "laptop"}), 201
        )
    headers = {"Authorization": f"Bearer {token['token']}"}
    async with httpx.AsyncClient(base_url=service.base_url, headers=headers, timeout=10) as api:
        rule = {
            "schedule_kind": "cron",
            "schedule_expr": "30 8 * * 1-5",
            "timezone": "Europe/Chisinau",
            "count": 3,
        }
        preview = await ok(await api.post("/schedules/preview", json=rule))
        assert len(preview["occurrences"]) == 3
        tasks = {}
        for name, schedule in SCHEDULES.items():
            body = {"title": f"{name} task", "timezone": "Europe/Chisinau", **schedule}
            tasks[name] = await ok(await api.post("/tasks", json=body), 201)
            assert tasks[name]["created_by"] == agent["id"]
        cron = f"/tasks/{tasks['cron']['id']}"
        occurrences = await ok(await api.get(f"{cron}/occurrences?count=3"))
        first = datetime.fromisoformat(occurrences["occurrences"][0])
        assert first == datetime.fromisoformat(tasks["cron"]["next_run_at"])
        assert occurrences["occurrences"] == preview["occurrences"]
        changes = [
            (await api.post(f"{cron}/pause"), "paused"),
            (await api.post(f"{cron}/resume"), "active"),
        ]
        for response, status in changes:
            assert (await ok(response))["status"] == status
        snoozed = await ok(await api.post(f"{cron}/snooze", json={"seconds": 600}))
        patched = await ok(await api.patch(cron, json={"title": "Standup briefing"}))
        assert patched["definition"]["title"] == "Standup briefing"
        assert patched["next_run_at"] == snoozed["next_run_at"]  # a title change keeps the snooze
        run = await ok(await api.post(f"{cron}/run_now"), 202)
        assert run["run_id"]
        assert (await ok(await api.post(f"{cron}/cancel")))["status"] == "canceled"
        await ok(await api.delete(f"/tasks/{tasks['once']['id']}"), 204)
        assert (await api.get(f"/tasks/{tasks['once']['id']}")).status_code == 404

        listed = await ok(await api.get("/tasks"))
        assert {t["id"] for t in listed["items"]} == {
            tasks[n]["id"] for n in ("cron", "rrule", "event")
        }
        read_back = await ok(await api.get(cron))
        assert (read_back["status"], read_back["version"]) == ("canceled", 7)

        log = await ok(await api.get("/events?limit=1000"))
        mine = [e for e in log["items"] if e["meta"]["actor"] == agent["id"]]
        assert [e["type"] for e in mine] == [
            "task.created",
            "task.created",
            "task.created",
            "task.created",
            "task.paused",
            "task.resumed",
            "task.snoozed",
            "task.updated",
            "task.run_requested",
            "run.queued",
            "task.canceled",
            "task.deleted",
        ]
        # audit completeness: every change, whoever made it, says who and in which request
        for event in log["items"]:
            assert event["meta"]["actor"], event
            assert event["meta"]["correlation_id"], event
    assert service.stop() == 0
