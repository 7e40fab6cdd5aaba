"""The example tasks run end to end over HTTP, their tools played by real local servers.

MCP servers (official SDK) for calendar, weather and mail run over streamable HTTP in this
process; telegram and gmail run over stdio, started by the service itself. The ``llm.*`` tools
are plain ``http`` tools. Every server records what it received, keyed by the idempotency key
``<run id>:<step path>``, so each run's calls can be told apart.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.tools_servers import example_tools
from tests.tools_servers.example_tools import (
    EVENTS,
    FORECAST,
    LLM_SCHEMAS,
    OUTBOUND,
    UNREAD,
    LlmStandIn,
    recorded_calls,
)
from tests.tools_servers.http_tool_server import serve

EXAMPLES = Path(__file__).parent.parent / "data" / "examples"
SCRIPT = Path(example_tools.__file__)
HTTP_MCP = ("google-calendar-mcp", "weather-mcp", "imap-mcp")
FINISHED = {"succeeded", "dead", "canceled", "deduplicated"}


@dataclass
class ToolServers:
    """The running tool servers: MCP endpoints by server name, and where calls are recorded."""

    mcp_endpoints: dict[str, str]
    llm: LlmStandIn
    llm_base: str
    records: Path

    def stdio_command(self, server: str) -> list[str]:
        return [sys.executable, str(SCRIPT), server, str(self.records / f"{server}.jsonl")]

    def calls(self, run_id: str) -> list[dict[str, Any]]:
        """Every call made for ``run_id``: {server, tool, step, arguments}, per server in order."""
        sources = {
            server: recorded_calls(self.records / f"{server}.jsonl")
            for server in example_tools.MCP_SERVERS
        }
        sources["llm"] = self.llm.received
        prefix = f"{run_id}:"
        return [
            {
                "server": server,
                "tool": call["tool"],
                "step": call["key"].removeprefix(prefix),
                "arguments": call["arguments"],
            }
            for server, calls in sources.items()
            for call in calls
            if call["key"].startswith(prefix)
        ]


@pytest.fixture(scope="module")
def tool_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolServers]:
    records = tmp_path_factory.mktemp("tool-calls")
    llm = LlmStandIn()
    with ExitStack() as stack:
        endpoints = {}
        for name in HTTP_MCP:
            server = example_tools.MCP_SERVERS[name](records / f"{name}.jsonl")
            endpoints[name] = stack.enter_context(serve(server.streamable_http_app())) + "/mcp"
        llm_base = stack.enter_context(serve(llm, lifespan="off"))
        yield ToolServers(endpoints, llm, llm_base, records)


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


async def register_tools(
    api: httpx.AsyncClient,
    servers: ToolServers,
    *,
    over_http: list[str],
    over_stdio: list[str],
    llm: list[str],
) -> None:
    """Import the MCP servers and register the llm tools (before any task names them)."""
    imports = [{"name": name, "endpoint": servers.mcp_endpoints[name]} for name in over_http]
    imports += [{"name": name, "command": servers.stdio_command(name)} for name in over_stdio]
    answers = await asyncio.gather(*(api.post("/tools/mcp_servers", json=b) for b in imports))
    for answer in answers:
        assert (await ok(answer, 201))["skipped"] == []
    for name in llm:
        input_schema, output_schema = LLM_SCHEMAS[name]
        body = {
            "address": f"llm.{name}",
            "transport": "http",
            "endpoint": f"{servers.llm_base}/{name}",
            "input_schema": input_schema,
            "output_schema": output_schema,
            "timeout_seconds": 10,
        }
        await ok(await api.post("/tools", json=body), 201)


async def create_task(api: httpx.AsyncClient, example: str) -> str:
    body = json.loads((EXAMPLES / example).read_text())
    return str((await ok(await api.post("/tasks", json=body), 201))["id"])


async def run_now(api: httpx.AsyncClient, task_id: str) -> str:
    return str((await ok(await api.post(f"/tasks/{task_id}/run_now"), 202))["run_id"])


async def run_reaching(
    api: httpx.AsyncClient, run_id: str, statuses: set[str], within: float = 20
) -> dict[str, Any]:
    """Poll GET /runs/{id} until its status is one of ``statuses``."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        run: dict[str, Any] = await ok(await api.get(f"/runs/{run_id}"))
        if run["status"] in statuses:
            return run
        assert run["status"] not in FINISHED, run
        assert asyncio.get_running_loop().time() < deadline, f"run stuck: {run}"
        await asyncio.sleep(0.1)


def steps_of(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["id"]: step for step in run["steps"]}


def compact(value: Any) -> str:
    """JSON as a template puts a non-string value into text."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def service_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "ORDINAUT_DATABASE_URL": database_url,
        "ORDINAUT_REDIS_URL": redis_url,
        "ORDINAUT_WORKER_POLL_SECONDS": "0.2",
    }


@pytest.mark.timeout(90)
async def test_the_morning_briefings_gather_plan_and_notify(
    tmp_path: Path,
    start_service: Any,
    database_url: str,
    redis_url: str,
    tool_servers: ToolServers,
) -> None:
    service = start_service(tmp_path / "data", service_env(database_url, redis_url))
    await service.wait_ready()
    async with service.client() as api:
        await register_tools(
            api, tool_servers, over_http=list(HTTP_MCP), over_stdio=["telegram-mcp"], llm=["plan"]
        )
        tasks = [
            await create_task(api, name)
            for name in ("morning_briefing.json", "morning_briefing_full.json")
        ]
        short_id, full_id = [await run_now(api, task) for task in tasks]
        short = await run_reaching(api, short_id, FINISHED)
        full = await run_reaching(api, full_id, FINISHED)
    check_short_briefing(short, tool_servers.calls(short_id))
    check_full_briefing(full, tool_servers.calls(full_id))
    assert service.stop() == 0


def check_short_briefing(run: dict[str, Any], calls: list[dict[str, Any]]) -> None:
    """morning_briefing.json: now-relative window, whole step outputs passed as objects."""
    assert run["status"] == "succeeded", run
    steps = steps_of(run)
    assert [s["id"] for s in run["steps"]] == ["calendar", "weather", "summarize", "notify"]
    assert {s["status"] for s in run["steps"]} == {"succeeded"}
    window = steps["calendar"]["input"]
    start, end = (datetime.fromisoformat(window[k]) for k in ("start", "end"))
    assert end - start == timedelta(hours=24)
    assert start.utcoffset() == start.astimezone(ZoneInfo("Europe/Chisinau")).utcoffset()
    assert steps["calendar"]["output"] == {"items": EVENTS, "count": 2, "window": window}
    weather = steps["weather"]
    assert (weather["tool"], weather["output"]) == ("weather-mcp.forecast", FORECAST)
    assert isinstance(weather["output"]["high_c"], float)
    assert isinstance(weather["output"]["low_c"], int)
    assert steps["summarize"]["input"] == {
        "instruction": "Create morning briefing",
        "calendar": steps["calendar"]["output"],
        "weather": FORECAST,
    }
    text = steps["summarize"]["output"]["text"]
    assert text == (
        "Plan: Create morning briefing\nEvents: 09:30 Standup, 14:00 Design review\n"
        "Weather: Sunny, 24.5 C"
    )
    assert steps["notify"]["input"] == {"chat_id": 12345, "text": text}
    assert steps["notify"]["output"] == {"ok": True, "message_id": 7001, "chat_id": 12345}
    assert [(c["server"], c["tool"], c["step"]) for c in calls] == [
        ("google-calendar-mcp", "list_events", "calendar"),
        ("weather-mcp", "forecast", "weather"),
        ("telegram-mcp", "send_message", "notify"),
        ("llm", "plan", "summarize"),
    ]  # grouped by server, not in time order
    sent = calls[2]["arguments"]
    assert sent == {"chat_id": 12345, "text": text}
    assert type(sent["chat_id"]) is int


def check_full_briefing(run: dict[str, Any], calls: list[dict[str, Any]]) -> None:
    """morning_briefing_full.json: params, numbers and booleans reach the tools as such."""
    assert run["status"] == "succeeded", run
    steps = steps_of(run)
    assert [s["id"] for s in run["steps"]] == ["cal", "wx", "mail", "plan", "ping"]
    assert {s["status"] for s in run["steps"]} == {"succeeded"}
    assert steps["cal"]["input"] == {
        "start": "2025-08-08T00:00:00+03:00",
        "end": "2025-08-08T23:59:59+03:00",
        "max": 50,
    }
    assert steps["wx"]["tool"] == "weather-mcp.today_forecast"
    assert steps["mail"]["input"] == {"count": 5}
    assert steps["mail"]["output"] == {"threads": UNREAD, "count": 2}
    instruction = (
        f"From {compact(EVENTS)}, {FORECAST['summary']}, and {compact(UNREAD)}, prepare a "
        "concise day plan with times, 3 must-dos, blockers, quick wins."
    )
    assert steps["plan"]["input"] == {"instruction": instruction}
    text = steps["plan"]["output"]["text"]
    assert text == f"Plan: {instruction}"
    sent = {"chat_id": 100200300, "text": text, "disable_preview": True}
    assert steps["ping"]["input"] == sent
    assert steps["ping"]["output"] == {"ok": True, "message_id": 7001, "chat_id": 100200300}
    by_step = {c["step"]: c for c in calls}
    assert sorted(by_step) == ["cal", "mail", "ping", "plan", "wx"]
    assert by_step["cal"]["arguments"] == steps["cal"]["input"]
    assert type(by_step["cal"]["arguments"]["max"]) is int
    received = by_step["ping"]["arguments"]
    assert received == sent
    assert type(received["chat_id"]) is int
    assert received["disable_preview"] is True


@pytest.mark.timeout(90)
async def test_the_email_followups_park_for_approval_and_loop_per_thread(
    tmp_path: Path,
    start_service: Any,
    database_url: str,
    redis_url: str,
    tool_servers: ToolServers,
) -> None:
    service = start_service(tmp_path / "data", service_env(database_url, redis_url))
    await service.wait_ready()
    async with service.client() as api:
        await register_tools(
            api,
            tool_servers,
            over_http=["imap-mcp"],
            over_stdio=["gmail-mcp"],
            llm=["generate_followups", "rewrite"],
        )
        approval_task = await create_task(api, "email_followup_approval.json")
        foreach_task = await create_task(api, "email_followup_foreach.json")
        approved_id, rejected_id = [await run_now(api, approval_task) for _ in range(2)]
        foreach_id = await run_now(api, foreach_task)

        parked = [
            await run_reaching(api, r, {"awaiting_approval"}) for r in (approved_id, rejected_id)
        ]
        drafts = check_parked(parked[0], tool_servers.calls(approved_id))
        chosen = [drafts[0], drafts[2]]
        decision = {"comment": "only Ana and Maria", "approved_items": chosen}
        await ok(await api.post(f"/runs/{approved_id}/approve", json=decision))
        await ok(await api.post(f"/runs/{rejected_id}/reject", json={"comment": "not today"}))
        approved = await run_reaching(api, approved_id, FINISHED)
        rejected = await run_reaching(api, rejected_id, FINISHED)
        looped = await run_reaching(api, foreach_id, FINISHED)
    check_approved(approved, chosen, tool_servers.calls(approved_id))
    check_rejected(rejected, tool_servers.calls(rejected_id))
    check_foreach(looped, tool_servers.calls(foreach_id))
    assert service.stop() == 0


def check_parked(run: dict[str, Any], calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A parked run shows the rendered approval request; nothing was sent yet. Its drafts."""
    steps = steps_of(run)
    ids = [s["id"] for s in run["steps"]]
    assert ids == ["scan_outbox", "generate_followups", "request_approval"]
    assert steps["scan_outbox"]["input"] == {"lookback_days": 7, "min_age_hours": 72}
    assert steps["scan_outbox"]["output"]["threads"] == OUTBOUND
    assert steps["generate_followups"]["input"] == {
        "emails": OUTBOUND,
        "tone": "professional_friendly",
    }
    drafts: list[dict[str, Any]] = steps["generate_followups"]["output"]["messages"]
    assert [d["thread_id"] for d in drafts] == ["t-101", "t-102", "t-103"]
    approval = run["approval"]
    assert approval["message"] == "Review 3 follow-up emails"
    assert (approval["data"], approval["status"]) == (drafts, "pending")
    assert approval["step_id"] == "request_approval"
    waiting = steps["request_approval"]
    assert waiting["status"] == "waiting"
    assert waiting["input"] == {"message": "Review 3 follow-up emails", "data": drafts}
    assert [c["server"] for c in calls] == ["imap-mcp", "llm"]  # gmail: nothing yet
    return drafts


def check_approved(
    run: dict[str, Any], chosen: list[dict[str, Any]], calls: list[dict[str, Any]]
) -> None:
    """After approval the run goes on and sends exactly the approved drafts."""
    assert run["status"] == "succeeded", run
    steps = steps_of(run)
    assert list(steps) == ["scan_outbox", "generate_followups", "request_approval", "send_approved"]
    assert steps["request_approval"]["output"] == {
        "status": "approved",
        "approved_items": chosen,
        "comment": "only Ana and Maria",
        "by": "admin",
        "expired": False,
    }
    assert steps["send_approved"]["input"] == {"drafts": chosen}
    assert steps["send_approved"]["output"] == {"sent": 2, "thread_ids": ["t-101", "t-103"]}
    # Resuming ran only the step after the approval: the scan and the drafting ran once.
    assert [(c["server"], c["step"]) for c in calls] == [
        ("imap-mcp", "scan_outbox"),
        ("gmail-mcp", "send_approved"),
        ("llm", "generate_followups"),
    ]
    assert calls[1]["arguments"] == {"drafts": chosen}
    assert run["approval"]["status"] == "approved"


def check_rejected(run: dict[str, Any], calls: list[dict[str, Any]]) -> None:
    """A rejected run succeeds with the send step skipped by its ``if``; gmail gets nothing."""
    assert run["status"] == "succeeded", run
    steps = steps_of(run)
    assert steps["request_approval"]["output"]["status"] == "rejected"
    assert steps["request_approval"]["output"]["approved_items"] == []
    assert steps["send_approved"]["status"] == "skipped"
    assert "output" not in steps["send_approved"]
    assert [c["server"] for c in calls] == ["imap-mcp", "llm"]


def check_foreach(run: dict[str, Any], calls: list[dict[str, Any]]) -> None:
    """One draft and one send per thread, each send naming its own item's thread."""
    assert run["status"] == "succeeded", run
    steps = steps_of(run)
    assert steps["scan"]["input"] == {"lookback_days": 7, "min_age_hours": 72, "max_items": 20}
    body_ids = [f"loop[{i}].{step}" for i in range(3) for step in ("draft", "send")]
    assert [s["id"] for s in run["steps"]] == ["scan", *body_ids, "loop"]
    results = []
    for index, thread in enumerate(OUTBOUND):
        draft, send = steps[f"loop[{index}].draft"], steps[f"loop[{index}].send"]
        instruction = f"One-sentence polite follow-up regarding {thread['subject']}."
        assert draft["input"] == {"instruction": instruction}
        assert draft["output"] == {"text": f"Rewritten: {instruction}"}
        assert send["input"] == {"thread_id": thread["thread_id"], "text": draft["output"]["text"]}
        results.append({"msg": draft["output"], "sent": send["output"]})
    assert steps["loop"]["input"] == {"items_path": "steps.targets.items", "count": 3}
    assert steps["loop"]["output"] == {"items": results, "count": 3}
    gmail = [
        (c["tool"], c["step"], c["arguments"]["thread_id"])
        for c in calls
        if c["server"] == "gmail-mcp"
    ]
    assert gmail == [
        ("send_draft", f"loop[{i}].send", t["thread_id"]) for i, t in enumerate(OUTBOUND)
    ]
