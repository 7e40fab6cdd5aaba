"""The dashboard in a real browser: an operator signs in with an agent token and steers runs.

The API (with the dashboard) runs under uvicorn in a thread and workers run in this process,
against the test's own database. Tasks are created through the API as the agent; everything
else happens by clicking, and every check is on what the page shows. The pages taken along the
way are saved as screenshots (``screenshots/`` or ``$ORDINAUT_SCREENSHOTS_DIR``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.browser.conftest import screenshots_dir
from tests.tools_servers.step_tool import StepTool, serving
from tests.workers import AUTH, api_client, register_tool, running_workers

# How long a page may take to show a state the workers reach (runs finish in well under this).
WITHIN_MS = 15_000
SCOPES = ["tasks:read", "tasks:write", "runs:read", "runs:approve", "events:read"]
NEVER = {"schedule_kind": "cron", "schedule_expr": "0 0 1 1 *", "timezone": "Europe/Lisbon"}
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# The page must never scroll sideways. Run tables must fit their box outright (they reflow on
# a phone); other tables may scroll inside their wrapper there, but must fit at laptop width.
CUT_OFF_JS = """() => {
  const out = [], doc = document.documentElement, phone = window.innerWidth <= 640;
  if (doc.scrollWidth > doc.clientWidth) out.push("page " + doc.scrollWidth + "px");
  for (const wrap of document.querySelectorAll(".table-wrap")) {
    const fits = wrap.scrollWidth <= wrap.clientWidth;
    if (!fits && (!phone || wrap.querySelector("table.reflow")))
      out.push((wrap.closest("section")?.querySelector("h2")?.textContent || "table").trim());
  }
  return out;
}"""
APPROVAL_PIPELINE = [
    {
        "id": "ask",
        "uses": "orchestrator.request_approval",
        "with": {"message": "Send the weekly digest?", "data": ["intro", "links"]},
    },
    {
        "id": "publish",
        "uses": "debug.echo",
        "if": "steps.ask.status == 'approved'",
        "with": {"items": "${steps.ask.approved_items}"},
    },
]


@dataclass
class Dashboard:
    """The running service seen two ways: an agent's API client and its signed-in browser."""

    api: httpx.AsyncClient
    headers: dict[str, str]
    token: str
    page: Any
    base_url: str
    tool: StepTool

    async def create_task(self, title: str, pipeline: list[dict[str, Any]], **fields: Any) -> str:
        body = {"title": title, **NEVER, "payload": {"pipeline": pipeline}, **fields}
        response = await self.api.post("/tasks", json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def run_now(self, task_id: str) -> str:
        response = await self.api.post(f"/tasks/{task_id}/run_now", headers=self.headers)
        assert response.status_code == 202, response.text
        return str(response.json()["run_id"])

    async def sign_in(self, token: str | None = None) -> None:
        """Send the sign-in form with ``token`` (the agent's by default)."""
        await self.open("/ui/login")
        await self.page.locator("input[name=token]").fill(token or self.token)
        await self.page.get_by_role("button", name="Sign in").click()

    async def open(self, path: str) -> None:
        await self.page.goto(f"{self.base_url}{path}")

    async def screenshot(self, name: str) -> None:
        await self.page.screenshot(path=str(screenshots_dir() / f"{name}.png"), full_page=True)

    async def cut_off(self) -> list[str]:
        """What runs off the right edge: the page itself, or a table that should fit its box."""
        return list(await self.page.evaluate(CUT_OFF_JS))

    async def at_both_widths(self, name: str) -> None:
        """Screenshots at laptop and phone width; at neither is anything cut off."""
        assert await self.cut_off() == [], f"{name} at {LAPTOP}"
        await self.screenshot(name)
        await self.page.set_viewport_size(PHONE)
        try:
            assert await self.cut_off() == [], f"{name} at {PHONE}"
            await self.screenshot(f"{name}-phone")
        finally:
            await self.page.set_viewport_size(LAPTOP)


async def _agent_token(api: httpx.AsyncClient) -> str:
    agent = await api.post("/agents", json={"name": "Ops desk", "scopes": SCOPES}, headers=AUTH)
    assert agent.status_code == 201, agent.text
    issued = await api.post(f"/agents/{agent.json()['id']}/tokens", json={}, headers=AUTH)
    assert issued.status_code == 201, issued.text
    return str(issued.json()["token"])


@pytest.fixture
async def dashboard(browser: Any, database_url: str, redis_url: str) -> AsyncIterator[Dashboard]:
    """The API and a worker on the test's database, an agent, and a browser (not signed in)."""
    tool = StepTool()
    with serving(tool) as tool_url:
        async with api_client(database_url, redis_url) as api:
            await register_tool(api, "test.flaky", f"{tool_url}/flaky")
            await register_tool(api, "test.gate", f"{tool_url}/gate/morning")
            token = await _agent_token(api)
            context = await browser.new_context(viewport=LAPTOP)
            page = await context.new_page()
            page.set_default_timeout(WITHIN_MS)
            base_url = str(api.base_url).rstrip("/")
            try:
                async with running_workers(database_url, redis_url):
                    headers = {"Authorization": f"Bearer {token}"}
                    yield Dashboard(api, headers, token, page, base_url, tool)
            finally:
                await context.close()


async def test_an_operator_finds_a_task_runs_it_now_and_watches_it_succeed(
    dashboard: Dashboard,
) -> None:
    from playwright.async_api import expect

    page = dashboard.page
    await dashboard.open("/ui/runs")
    await expect(page.locator("input[name=token]")).to_be_visible()
    await expect(page.get_by_test_id("run-row")).to_have_count(0)
    await dashboard.sign_in("not-a-token-of-anyone-0123456789")
    await expect(page.get_by_test_id("error")).to_be_visible()
    await expect(page.locator("input[name=token]")).to_be_visible()
    await dashboard.sign_in()
    await expect(page).to_have_url(re.compile(r"/ui/?$"))

    pipeline = [
        {"id": "hello", "uses": "debug.echo", "with": {"text": "good morning"}},
        {"id": "deliver", "uses": "test.gate", "with": {"to": "team"}},
    ]
    task_id = await dashboard.create_task("Morning report", pipeline)
    await dashboard.create_task(
        "Invoice reminders", [{"id": "x", "uses": "debug.echo", "with": {}}], priority=7
    )
    cookies = await page.context.cookies()
    assert any(c["httpOnly"] for c in cookies), "the session cookie must be HttpOnly"
    assert dashboard.token not in await page.content()

    await page.get_by_role("link", name="Tasks").first.click()
    rows = page.get_by_test_id("task-row")
    await expect(rows).to_have_count(2)
    await expect(rows.filter(has_text="Morning report")).to_have_count(1)

    await dashboard.open("/ui/tasks?q=morning")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Morning report")

    await rows.first.get_by_role("link", name="Morning report").click()
    await expect(page).to_have_url(re.compile(rf"/ui/tasks/{task_id}$"))
    await expect(page.get_by_role("button", name="Run now")).to_be_visible()

    await page.get_by_role("button", name="Run now").click()
    if "/ui/runs/" not in page.url:
        latest = page.get_by_test_id("latest-run")
        await expect(latest).to_be_visible()
        await latest.click()
    await expect(page).to_have_url(re.compile(r"/ui/runs/[^/?]+$"))
    # The run waits in its second step (the tool holds the call) until the page is up; then it
    # finishes, and the page shows it without being reloaded (the marker would be gone).
    run_status = page.get_by_test_id("run-status")
    await dashboard.tool.wait_entered("morning")
    await expect(run_status).to_have_text("running")
    events = page.get_by_test_id("run-event")
    await expect(events.filter(has_text="run.started")).to_have_count(1)
    await page.evaluate("window.notReloaded = true")
    dashboard.tool.gate("morning").opened.set()
    await expect(run_status).to_have_text("succeeded")
    # Polling has stopped; the run's events got there with its final state.
    await expect(events.first).to_contain_text("run.queued")
    await expect(events.last).to_contain_text("run.succeeded")
    assert await page.evaluate("window.notReloaded === true"), "the page was reloaded"
    steps = page.get_by_test_id("step")
    await expect(steps).to_have_count(2)
    await expect(steps.first).to_contain_text("hello")
    await expect(steps.nth(1)).to_contain_text("deliver")
    await dashboard.at_both_widths("run")
    await dashboard.open(f"/ui/tasks/{task_id}")
    await dashboard.at_both_widths("task")
    for path in ("/ui/tasks", "/ui/runs", "/ui/events"):
        await dashboard.open(path)
        await dashboard.at_both_widths(path.removeprefix("/ui/"))

    await page.get_by_role("link", name="Runs").first.click()
    await expect(page.get_by_test_id("run-row")).to_have_count(1)
    await expect(page.get_by_test_id("run-row").first).to_contain_text("succeeded")

    await page.get_by_role("link", name="Events").first.click()
    await expect(page.get_by_test_id("event-row").first).to_be_visible()
    created = page.get_by_test_id("event-row").filter(has_text="task.created")
    await expect(created).not_to_have_count(0)

    await page.get_by_role("link", name="Overview").first.click()
    await expect(page).to_have_url(re.compile(r"/ui/?$"))


async def test_an_operator_approves_a_parked_run_and_retries_dead_ones(
    dashboard: Dashboard,
) -> None:
    from playwright.async_api import expect

    page = dashboard.page
    status = page.get_by_test_id("run-status")
    await dashboard.sign_in()

    approval_task = await dashboard.create_task("Weekly digest", APPROVAL_PIPELINE)
    flaky = [{"id": "deliver", "uses": "test.flaky", "with": {}}]
    failing_task = await dashboard.create_task("Push to partner", flaky, max_retries=0)
    dashboard.tool.failing = True
    parked = await dashboard.run_now(approval_task)
    dead = [await dashboard.run_now(failing_task) for _ in range(3)]

    await dashboard.open(f"/ui/runs/{parked}")
    await expect(status).to_have_text("awaiting_approval")
    await expect(page.get_by_role("button", name="Reject")).to_be_visible()
    await expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    await dashboard.screenshot("run-awaiting-approval")
    rows = page.get_by_test_id("run-row")
    await dashboard.open("/ui/runs?status=dead")
    await expect(rows).to_have_count(3)
    await dashboard.open("/ui")
    await dashboard.at_both_widths("overview")

    await dashboard.open(f"/ui/runs/{parked}")
    await page.get_by_role("button", name="Approve").click()
    await expect(status).to_have_text("succeeded")
    await expect(page.get_by_test_id("step").filter(has_text="publish")).to_have_count(1)

    dashboard.tool.failing = False
    await dashboard.open(f"/ui/runs/{dead[0]}")
    await expect(status).to_have_text("dead")
    await expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    await page.get_by_role("button", name="Retry").click()
    await expect(status).to_have_text("succeeded")

    # "Retry all dead", once confirmed, brings the other two back.
    await dashboard.open("/ui/runs?status=dead")
    await expect(rows).to_have_count(2)
    retry_all = page.get_by_role("button", name="Retry all dead")
    await retry_all.or_(page.get_by_role("link", name="Retry all dead")).click()
    await page.get_by_role("button", name="Confirm retry").click()
    await expect(page.get_by_test_id("notice")).to_be_visible()
    for run_id in dead[1:]:
        await dashboard.open(f"/ui/runs/{run_id}")
        await expect(status).to_have_text("succeeded")
    await dashboard.open("/ui/runs?status=dead")
    await expect(rows).to_have_count(0)
