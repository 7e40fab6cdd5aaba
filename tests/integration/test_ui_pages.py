"""Every dashboard page renders what a signed-in agent may see, in the task's zone; bad input
is a 4xx page naming the field."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import redis.asyncio as redis

from tests.ui_client import ALL_SCOPES, agent_token, signed_in
from tests.workers import AUTH, run_to_end, running_workers

EACH = {"id": "each", "uses": "debug.echo"}
MONTHLY = {  # 20 monthly occurrences always cross a change of Chisinau's offset
    "title": "Monthly report",
    "schedule_kind": "cron",
    "schedule_expr": "0 12 1 * *",
    "timezone": "Europe/Chisinau",
    "payload": {
        "params": {"who": "Ana", "items": [1, 2]},
        "pipeline": [
            {"id": "greet", "uses": "debug.echo", "with": {"text": "hi ${params.who}"}},
            {
                "id": "loop",
                "uses": "pipeline.foreach",
                "with": {"items_path": "params.items", "body": [EACH]},
            },
        ],
    },
}
_ZONED = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)? [+-]\d\d:\d\d Europe/Chisinau")


async def _own_task(api: httpx.AsyncClient, token: str, **fields: Any) -> dict[str, Any]:
    body = {**MONTHLY, **fields}
    response = await api.post("/tasks", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def rows(page: str, testid: str) -> list[str]:
    """The HTML of each element with this data-testid."""
    return re.findall(
        rf'<(?:tr|li|article)[^>]*data-testid="{testid}".*?</(?:tr|li|article)>', page, re.S
    )


async def test_pages_show_a_task_its_run_and_its_events(
    client: httpx.AsyncClient, database_url: str, redis_url: str
) -> None:
    _, token = await agent_token(client, "viewer", ALL_SCOPES)
    auth = {"Authorization": f"Bearer {token}"}
    task = await _own_task(client, token)
    other = await _own_task(
        client,
        token,
        title="Mid-month thing",
        schedule_expr="5 3 15 * *",
        timezone="UTC",
        payload={},
    )
    run_id = await run_now_as(client, task["id"], auth)
    async with running_workers(database_url, redis_url):
        assert (await run_to_end(client, run_id))["status"] == "succeeded"

    async with signed_in(client, token) as ui:
        overview = (await ui.get("/ui")).text
        firings = rows(overview, "firing")
        assert len(firings) == 10
        assert any("Monthly report" in row and _ZONED.search(row) for row in firings)
        assert any("Mid-month thing" in row and "03:05 +00:00 UTC" in row for row in firings)
        assert 'data-testid="workers-alive"' in overview
        assert re.search(r'data-testid="run-counts".*succeeded</span> <strong>1<', overview, re.S)

        listed = (await ui.get("/ui/tasks")).text
        assert len(rows(listed, "task-row")) == 2
        assert f'<a href="/ui/tasks/{task["id"]}">Monthly report</a>' in listed
        assert _ZONED.search(listed)
        for query, expected in (
            ("q=monthly", 1),
            ("status=paused", 0),
            ("kind=cron", 2),
            ("kind=rrule", 0),
            ("q=nothing-like-it", 0),
        ):
            assert len(rows((await ui.get(f"/ui/tasks?{query}")).text, "task-row")) == expected
        first = (await client.get("/tasks?limit=1", headers=auth)).json()
        after = (await ui.get(f"/ui/tasks?cursor={first['next']}")).text
        assert rows(after, "task-row")
        assert "Mid-month thing" in after
        assert "Monthly report" not in after

        page = (await ui.get(f"/ui/tasks/{task['id']}")).text
        assert len(rows(page, "occurrence")) == 20
        assert rows(page, "dst-change"), "20 months cross a daylight-saving change"
        assert "+02:00 Europe/Chisinau" in page
        assert "+03:00 Europe/Chisinau" in page
        assert "greet" in page
        assert "pipeline.foreach" in page
        assert "params.items" in page
        assert f'data-testid="latest-run" href="/ui/runs/{run_id}"' in page
        assert "task.run_requested" in page
        assert "task.created" in page
        for label in ("Run now", "Pause", "Snooze", "Cancel"):
            assert re.search(rf"<button[^>]*>{label}</button>", page), label
        assert ">Resume</button>" not in page

        run = (await ui.get(f"/ui/runs/{run_id}")).text
        assert re.search(r'data-testid="run-status">succeeded<', run)
        steps = re.findall(r'data-testid="step" data-step-id="([^"]+)"', run)
        assert {"greet", "loop"} <= set(steps)
        assert len(steps) == 4  # the foreach body ran once per item
        assert "hi Ana" in run
        assert "hx-trigger" not in run.split('id="run-live"')[1].split(">")[0]
        assert "run.succeeded" in run

        runs = (await ui.get(f"/ui/runs?task_id={task['id']}")).text
        assert len(rows(runs, "run-row")) == 1
        assert "Monthly report" in runs
        assert not rows((await ui.get("/ui/runs?status=dead")).text, "run-row")
        assert rows((await ui.get(f"/ui/runs?task_id={other['id']}")).text, "run-row") == []

        events = (await ui.get("/ui/events")).text
        assert rows(events, "event-row")
        assert 'data-testid="event-json"' in events
        created = (await ui.get("/ui/events?type=task.created")).text
        assert len(rows(created, "event-row")) == 2
        stream = (await ui.get(f"/ui/events?stream=run-{run_id}")).text
        assert "run.queued" in stream
        assert "task.created" not in stream
        oldest = (await ui.get("/ui/events?after=0&type=task.created")).text
        assert rows(oldest, "event-row")[0].count("task.created")


async def run_now_as(api: httpx.AsyncClient, task_id: str, auth: dict[str, str]) -> str:
    response = await api.post(f"/tasks/{task_id}/run_now", headers=auth)
    assert response.status_code == 202, response.text
    return str(response.json()["run_id"])


async def test_the_admin_sees_ingest_dead_letters(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    reason = f"payload is not an object ({uuid.uuid4().hex[:8]})"
    writer = redis.Redis.from_url(redis_url)
    try:
        await writer.xadd("ordinaut:dead", {"reason": reason, "topic": "order.placed"})
    finally:
        await writer.aclose()
    async with signed_in(client, AUTH["Authorization"][7:]) as ui:
        overview = (await ui.get("/ui")).text
    assert any(reason in row for row in rows(overview, "dead-letter"))


async def test_a_run_page_polls_while_the_run_can_change(
    client: httpx.AsyncClient, database_url: str, redis_url: str
) -> None:
    _, token = await agent_token(client, "poller", ALL_SCOPES)
    task = await _own_task(client, token)
    run_id = await run_now_as(client, task["id"], {"Authorization": f"Bearer {token}"})
    async with signed_in(client, token) as ui:
        page = await ui.get(f"/ui/runs/{run_id}")
        live = page.text.split('id="run-live"')[1].split(">")[0]
        assert 'hx-trigger="every 1s"' in live
        assert re.search(r'data-testid="run-status">queued<', page.text)
        fragment = await ui.get(f"/ui/runs/{run_id}", headers={"HX-Request": "true"})
        assert fragment.status_code == 200
        assert 'id="run-live"' in fragment.text
        assert _event_types(fragment.text) == ["run.queued"]
        async with running_workers(database_url, redis_url):
            assert (await run_to_end(client, run_id))["status"] == "succeeded"
        # The poll that finds the run settled stops polling and carries its final events.
        last = (await ui.get(f"/ui/runs/{run_id}", headers={"HX-Request": "true"})).text
        assert "hx-trigger" not in last.split('id="run-live"')[1].split(">")[0]
        types = _event_types(last)
        assert types[0] == "run.queued"
        assert {"run.started", "run.step_succeeded"} <= set(types)
        assert types[-1] == "run.succeeded"


def _event_types(page: str) -> list[str]:
    """The run's event types as its live fragment lists them, oldest first."""
    live = page.split('id="run-live"')[1]
    return [re.findall(r"<code>([^<]+)</code>", row)[0] for row in rows(live, "run-event")]


async def test_bad_input_is_a_4xx_page_naming_the_field(client: httpx.AsyncClient) -> None:
    _, token = await agent_token(client, "typo", ALL_SCOPES)
    task = await _own_task(client, token)
    async with signed_in(client, token) as ui:
        cases = {
            "/ui/tasks?status=bogus": (422, "status"),
            "/ui/tasks?kind=weekly": (422, "kind"),
            "/ui/tasks?cursor=not-a-cursor": (422, "cursor"),
            "/ui/tasks?q=" + "x" * 201: (422, "q"),
            "/ui/runs?status=finished": (422, "status"),
            "/ui/runs?task_id=nope": (422, "task_id"),
            "/ui/runs?cursor=%%%": (422, "cursor"),
            "/ui/events?after=abc": (422, "after"),
            "/ui/events?before=-1": (422, "before"),
            "/ui/events?type=not%20a%20type": (422, "type"),
            "/ui/events?since=yesterday": (422, "since"),
            "/ui/events?until=9999-12-31T23:59:59-14:00": (422, "until"),
            "/ui/events?type=no.such.type": (422, "type"),
            "/ui/events?after=9223372036854775808-0": (422, "after"),
            "/ui/events?stream=a%00b": (422, "stream"),
            "/ui/tasks/00000000-0000-4000-8000-000000000000": (404, "no task"),
            "/ui/tasks/not-an-id": (404, "no such task"),
            "/ui/runs/00000000-0000-4000-8000-000000000000": (404, "no run"),
        }
        for path, (status, named) in cases.items():
            response = await ui.get(path)
            assert response.status_code == status, (path, response.status_code)
            assert response.headers["content-type"].startswith("text/html"), path
            assert 'data-testid="error"' in response.text, path
            assert named in response.text, path
        page = await ui.get(f"/ui/tasks/{task['id']}?done=retried_all&n={'9' * 5000}")
        assert page.status_code == 200
        posted = await ui.post(f"/ui/tasks/{task['id']}/pause", json={"csrf_token": "x"})
        assert posted.status_code == 403  # only a form can carry the CSRF token
