"""Dashboard buttons append the same events as the API, as the signed-in agent."""

from __future__ import annotations

import html
import re
from typing import Any

import asyncpg
import httpx

from tests.tools_servers.step_tool import StepTool
from tests.ui_client import ALL_SCOPES, agent_token, csrf_of, nonce_of, post_form, signed_in
from tests.workers import register_tool, run_in, run_to_end, running_workers

APPROVAL = [
    {"id": "ask", "uses": "orchestrator.request_approval", "with": {"message": "Ship it?"}},
    {"id": "after", "uses": "debug.echo", "with": {"decision": "${steps.ask.status}"}},
]


async def _task(api: httpx.AsyncClient, token: str, pipeline: list[Any], **fields: Any) -> str:
    body = {
        "title": "Buttons",
        "schedule_kind": "cron",
        "schedule_expr": "0 9 * * *",
        "timezone": "Europe/Chisinau",
        "payload": {"pipeline": pipeline},
        **fields,
    }
    response = await api.post("/tasks", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _events(pool: asyncpg.Pool, stream: str) -> list[tuple[str, str]]:
    rows = await pool.fetch(
        "SELECT type, meta->>'actor' AS actor FROM events WHERE stream = $1 ORDER BY version",
        stream,
    )
    return [(row["type"], row["actor"]) for row in rows]


def _run_id(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    found = re.fullmatch(r"/ui/runs/([0-9a-f-]{36})", response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


async def test_task_buttons_record_events_as_the_agent(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    agent_id, token = await agent_token(client, "operator", ALL_SCOPES)
    task_id = await _task(client, token, [{"id": "a", "uses": "debug.echo"}])
    page = f"/ui/tasks/{task_id}"
    async with signed_in(client, token) as ui:
        listed = (await ui.get("/ui/tasks?q=Butt")).text
        assert re.search(r"<button[^>]*>Pause</button>", listed)
        back = re.search(r'name="back" value="([^"]+)"', listed)
        assert back
        assert back.group(1) == "/ui/tasks?q=Butt"
        paused = await post_form(ui, "/ui/tasks?q=Butt", f"{page}/pause", back=back.group(1))
        assert paused.headers["location"] == "/ui/tasks?q=Butt&done=paused"
        shown = (await ui.get(paused.headers["location"])).text
        assert 'data-testid="notice"' in shown
        assert re.search(r"<button[^>]*>Resume</button>", shown)
        shown = (await ui.get(page)).text
        assert ">Resume</button>" in shown
        assert ">Pause</button>" not in shown
        resumed = await post_form(ui, page, f"{page}/resume", back="https://evil.example/ui/tasks")
        assert resumed.headers["location"] == f"{page}?done=resumed"
        snoozed = await post_form(ui, page, f"{page}/snooze", minutes="90")
        assert snoozed.status_code == 303
        refused = await post_form(ui, page, f"{page}/snooze", minutes="0")
        assert refused.status_code == 422
        assert "minutes" in refused.text
        assert (await post_form(ui, page, f"{page}/explode")).status_code == 404
        await post_form(ui, page, f"{page}/cancel")
        done = (await ui.get(page)).text
        assert ">Run now</button>" not in done
        assert ">Cancel</button>" not in done
        again = await post_form(ui, "/ui", f"{page}/pause")
        assert again.status_code == 409
        assert "canceled" in again.text
    history = await _events(pool, f"task-{task_id}")
    assert [kind for kind, _ in history] == [
        "task.created",
        "task.paused",
        "task.resumed",
        "task.snoozed",
        "task.canceled",
    ]
    assert {actor for _, actor in history} == {agent_id}


async def test_run_now_opens_the_run_and_a_double_click_queues_one_run(
    client: httpx.AsyncClient, pool: asyncpg.Pool, database_url: str, redis_url: str
) -> None:
    _, token = await agent_token(client, "clicker", ALL_SCOPES)
    task_id = await _task(client, token, [{"id": "a", "uses": "debug.echo", "with": {"n": 1}}])
    async with signed_in(client, token) as ui:
        page = (await ui.get(f"/ui/tasks/{task_id}")).text
        form = {"csrf_token": csrf_of(page), "nonce": nonce_of(page)}
        first = _run_id(await ui.post(f"/ui/tasks/{task_id}/run-now", data=form))
        second = _run_id(await ui.post(f"/ui/tasks/{task_id}/run-now", data=form))
        assert first == second
        assert await pool.fetchval("SELECT count(*) FROM runs WHERE task_id = $1", task_id) == 1
        extra = _run_id(await post_form(ui, f"/ui/tasks/{task_id}", f"/ui/tasks/{task_id}/run-now"))
        assert extra != first
        queued = (await ui.get(f"/ui/runs/{extra}")).text
        assert re.search(r"<button[^>]*>Cancel run</button>", queued)
        canceled = await post_form(ui, f"/ui/runs/{extra}", f"/ui/runs/{extra}/cancel")
        assert canceled.headers["location"] == f"/ui/runs/{extra}?done=run_canceled"
        shown = (await ui.get(canceled.headers["location"])).text
        assert re.search(r'data-testid="run-status">canceled<', shown)
        async with running_workers(database_url, redis_url):
            await run_to_end(client, first)
        shown = (await ui.get(f"/ui/runs/{first}")).text
        assert re.search(r'data-testid="run-status">succeeded<', shown)


async def test_approve_reject_and_retry_steer_runs(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    database_url: str,
    redis_url: str,
    tool: tuple[StepTool, str],
) -> None:
    server, base_url = tool
    server.failing = True
    await register_tool(client, "test.flaky", f"{base_url}/flaky")
    agent_id, token = await agent_token(client, "approver", [*ALL_SCOPES, "test"])
    parked = await _task(client, token, APPROVAL)
    flaky = await _task(client, token, [{"id": "sync", "uses": "test.flaky"}], max_retries=0)
    async with signed_in(client, token) as ui, running_workers(database_url, redis_url):
        runs = {}
        for name, task_id in (("yes", parked), ("no", parked), ("dead", flaky), ("dead2", flaky)):
            runs[name] = _run_id(
                await post_form(ui, f"/ui/tasks/{task_id}", f"/ui/tasks/{task_id}/run-now")
            )
        await run_in(client, runs["yes"], ("awaiting_approval",))
        await run_in(client, runs["no"], ("awaiting_approval",))
        page = (await ui.get(f"/ui/runs/{runs['yes']}")).text
        assert re.search(r"<button[^>]*>Approve</button>", page)
        assert re.search(r"<button[^>]*>Reject</button>", page)
        assert "Ship it?" in page
        yes = f"/ui/runs/{runs['yes']}"
        approved = await post_form(ui, yes, f"{yes}/approve", comment="fine by me")
        assert approved.headers["location"] == f"/ui/runs/{runs['yes']}?done=approved"
        await post_form(ui, f"/ui/runs/{runs['no']}", f"/ui/runs/{runs['no']}/reject")
        assert (await run_to_end(client, runs["yes"]))["status"] == "succeeded"
        assert (await run_to_end(client, runs["no"]))["status"] == "succeeded"
        shown = (await ui.get(f"/ui/runs/{runs['yes']}")).text
        assert "fine by me" in shown
        assert "Approve</button>" not in shown

        await run_to_end(client, runs["dead"])
        await run_to_end(client, runs["dead2"])
        dead = (await ui.get(f"/ui/runs/{runs['dead']}")).text
        assert re.search(r'data-testid="run-status">dead<', dead)
        assert re.search(r"<button[^>]*>Retry</button>", dead)
        server.failing = False
        retried = await post_form(ui, f"/ui/runs/{runs['dead']}", f"/ui/runs/{runs['dead']}/retry")
        assert retried.status_code == 303
        assert (await run_to_end(client, runs["dead"]))["status"] == "succeeded"

        confirm = (await ui.get("/ui/runs/retry-dead")).text
        assert re.search(r'data-testid="dead-count">1 dead run ', confirm)
        assert re.search(r"<button[^>]*>Confirm retry</button>", confirm)
        listed = (await ui.get("/ui/runs")).text
        assert re.search(r"<button[^>]*>Retry all dead</button>", listed)
        # The dead run's error, however long, is whole in its cell's title.
        error = (await run_to_end(client, runs["dead2"]))["error"]
        titles = re.findall(r'class="error-cell" title="([^"]*)"', listed)
        assert error in [html.unescape(title) for title in titles]
        bulk = await post_form(ui, "/ui/runs/retry-dead", "/ui/runs/retry-dead")
        assert bulk.headers["location"] == "/ui/runs?done=retried_all&n=1"
        assert (await run_to_end(client, runs["dead2"]))["status"] == "succeeded"
        assert "Retried 1 dead runs" in (await ui.get(bulk.headers["location"])).text

    decided = await pool.fetch(
        "SELECT stream, type, meta->>'actor' AS actor FROM events"
        " WHERE type IN ('approval.granted', 'approval.rejected') ORDER BY position"
    )
    assert [(r["stream"], r["type"], r["actor"]) for r in decided] == [
        (f"run-{runs['yes']}", "approval.granted", agent_id),
        (f"run-{runs['no']}", "approval.rejected", agent_id),
    ]
    retries = await pool.fetch(
        "SELECT stream FROM events WHERE type = 'run.queued' AND data->>'trigger' = 'retry'"
        " ORDER BY position"
    )
    assert [r["stream"] for r in retries] == [f"run-{runs['dead']}", f"run-{runs['dead2']}"]
