"""MCP over streamable HTTP at /mcp, with the SDK's own client against the served API."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from mcp.shared.exceptions import MCPError

from services.api.app import ApiConfig, create_app
from services.api.auth import admit_any_token
from services.mcp.http import McpMount
from services.mcp.server import listed_tools
from services.runtime.admin_token import token_hash
from tests.mcp_support import (
    BRIEFING,
    NON_FINITE,
    mcp_http,
    ok,
    refused,
    refused_as_not_finite,
    schedule_run_and_approve,
)
from tests.workers import ADMIN, AUTH, running_workers, serve_in_thread

SNAPSHOT = Path(__file__).parent.parent / "data" / "mcp_tools.json"


@pytest.fixture
async def served(database_url: str, redis_url: str) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """The API served by uvicorn in a thread: its URL and an admin HTTP client."""
    app = create_app(
        ApiConfig(database_url, redis_url, token_hash(ADMIN)), mounts=[McpMount(admit_any_token)]
    )
    with serve_in_thread(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url, headers=AUTH, timeout=30) as http:
            yield base_url, http


async def agent_token(http: httpx.AsyncClient, scopes: list[str]) -> tuple[str, str, str]:
    """(agent id, token id, token) of a new agent with ``scopes``."""
    name = f"bot {' '.join(scopes)}"
    agent = (await http.post("/agents", json={"name": name, "scopes": scopes})).json()
    token = (await http.post(f"/agents/{agent['id']}/tokens", json={})).json()
    return agent["id"], token["id"], token["token"]


async def test_an_agent_schedules_runs_and_approves_over_mcp_as_over_http(
    served: tuple[str, httpx.AsyncClient], database_url: str, redis_url: str
) -> None:
    base_url, http = served
    async with running_workers(database_url, redis_url), mcp_http(base_url, ADMIN) as client:
        await schedule_run_and_approve(client, http)


async def test_an_agent_token_works_within_its_scopes_and_no_further(
    served: tuple[str, httpx.AsyncClient], pool: asyncpg.Pool
) -> None:
    base_url, http = served
    mine = (await http.post("/tasks", json=BRIEFING)).json()
    _, _, reader = await agent_token(http, ["tasks:read", "runs:read"])
    before = await pool.fetchval("SELECT count(*) FROM events")
    async with mcp_http(base_url, reader) as client:
        assert (await ok(client, "list_tasks"))["items"] == []  # agents see their own tasks
        problem = await refused(client, "create_task", **BRIEFING)
        assert (problem["status"], problem["title"]) == (403, "Forbidden")
        assert "tasks:write" in problem["detail"]
        for tool in ("pause_task", "cancel_task", "delete_task", "run_task_now"):
            assert (await refused(client, tool, task_id=mine["id"]))["status"] == 403, tool
        changes = {"task_id": mine["id"], "changes": {"title": "mine now"}}
        assert (await refused(client, "update_task", **changes))["status"] == 403
        assert (await refused(client, "approve_run", run_id=mine["id"]))["status"] == 403
    assert await pool.fetchval("SELECT count(*) FROM events") == before

    _, _, writer = await agent_token(http, ["tasks:read", "tasks:write"])
    async with mcp_http(base_url, writer) as client:
        created = await ok(client, "create_task", **BRIEFING)
        assert created["created_by"] != "admin"
        assert (await refused(client, "get_task", task_id=mine["id"]))["status"] == 404


async def test_mcp_refuses_missing_wrong_and_revoked_tokens_at_connection(
    served: tuple[str, httpx.AsyncClient],
) -> None:
    base_url, http = served
    agent_id, token_id, revoked = await agent_token(http, ["tasks:read"])
    await http.delete(f"/agents/{agent_id}/tokens/{token_id}")
    hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    for headers in (
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Bearer {revoked}"},
    ):
        async with httpx.AsyncClient(base_url=base_url) as anonymous:
            response = await anonymous.post("/mcp", json=hello, headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
    with pytest.raises(BaseExceptionGroup) as raised:  # the SDK's task groups wrap the refusal
        async with mcp_http(base_url, "not-a-token") as client:
            await client.list_tools()
    # The SDK reports the 401 asserted above only as "Server returned an error response".
    assert any(isinstance(leaf, MCPError) for leaf in leaves(raised.value)), raised.value


def leaves(exc: BaseException) -> list[BaseException]:
    """The errors inside the exception groups the SDK's task groups raise."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


async def test_mcp_refuses_hosts_it_does_not_serve(served: tuple[str, httpx.AsyncClient]) -> None:
    base_url, _ = served
    hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {**AUTH, "Host": "rebound.example", "Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.post("/mcp", json=hello, headers=headers)
    assert response.status_code == 421, response.text


BAD_INPUT: list[tuple[str, dict[str, Any], str]] = [
    (
        "create_task",
        {"title": "x", "schedule_kind": "cron", "schedule_expr": "61 * * * *"},
        "schedule_expr",
    ),
    (
        "create_task",
        {"title": "x", "schedule_kind": "cron", "schedule_expr": "* * * * *", "priority": 10},
        "priority",
    ),
    (
        "create_task",
        {
            "title": "x",
            "schedule_kind": "cron",
            "schedule_expr": "* * * * *",
            "timezone": "Mars/Olympus",
        },
        "timezone",
    ),
    ("create_task", {"schedule_kind": "cron", "schedule_expr": "* * * * *"}, "title"),
    (
        "create_task",
        {"title": "x", "schedule_kind": "weekly", "schedule_expr": "x"},
        "schedule_kind",
    ),
    ("update_task", {"task_id": "{task}", "changes": {"priority": 0}}, "changes.priority"),
    ("update_task", {"task_id": "{task}", "changes": {"schedule_expr": "nope"}}, "schedule_expr"),
    ("update_task", {"task_id": "{task}", "changes": {}, "expected_version": 99}, ""),
    ("list_tasks", {"limit": 0}, "limit"),
    ("list_tasks", {"status": "sleeping"}, "status"),
    ("list_tasks", {"cursor": "forged"}, "cursor"),
    ("get_task", {}, "task_id"),
    ("preview_schedule", {"schedule_kind": "cron", "schedule_expr": "bad"}, "schedule_expr"),
    (
        "preview_schedule",
        {"schedule_kind": "cron", "schedule_expr": "* * * * *", "count": 0},
        "count",
    ),
    ("preview_schedule", {"schedule_expr": "* * * * *"}, "schedule_kind"),
    (
        "preview_schedule",
        {"schedule_kind": "cron", "schedule_expr": "0 0 * * *", "after": "9999-12-31T23:59:59"},
        "after",
    ),
    ("run_task_now", {"task_id": 5}, "task_id"),
    ("pause_task", {"task_id": ""}, "task_id"),
    ("resume_task", {"task_id": "{task}", "catch_up": "yes"}, "catch_up"),
    ("snooze_task", {"task_id": "{task}", "seconds": 0}, "seconds"),
    ("snooze_task", {"task_id": "{task}", "until": "9999-12-31T23:59:59-12:00"}, "until"),
    ("cancel_task", {}, "task_id"),
    ("delete_task", {"task_id": "{task}", "force": True}, "force"),
    ("list_runs", {"status": "done"}, "status"),
    ("get_run", {"run_id": None}, "run_id"),
    ("approve_run", {"run_id": "{task}", "approved_items": "all"}, "approved_items"),
    ("reject_run", {"run_id": "{task}", "comment": 5}, "comment"),
    ("rerun_run", {"run_id": "{task}", "from_step": ""}, "from_step"),
    ("publish_event", {"topic": "bad topic!", "payload": {}}, "topic"),
    ("publish_event", {"topic": "calendar.changed"}, "payload"),
    ("list_tools", {"verbose": True}, "verbose"),
    ("dry_run_pipeline", {}, "task_id"),
    (
        "dry_run_pipeline",
        {
            "task": {
                "title": "x",
                "schedule_kind": "cron",
                "schedule_expr": "* * * * *",
                "priority": 0,
            }
        },
        "task.priority",
    ),
    ("get_history", {}, "task_id"),
]


async def test_every_tool_names_the_field_of_bad_input_and_the_session_goes_on(
    served: tuple[str, httpx.AsyncClient],
) -> None:
    base_url, http = served
    task = (await http.post("/tasks", json=BRIEFING)).json()
    async with mcp_http(base_url, ADMIN) as client:
        for tool, arguments, field in BAD_INPUT:
            filled = json.loads(json.dumps(arguments).replace("{task}", task["id"]))
            problem = await refused(client, tool, **filled)
            assert problem["status"] in (409, 422), (tool, problem)
            if field:
                assert [e["field"] for e in problem["errors"]] == [field], (tool, problem)
            if tool == "create_task":  # the same validation as the API, word for word
                over_http = (await http.post("/tasks", json=filled)).json()
                assert (problem["status"], problem["errors"]) == (
                    over_http["status"],
                    over_http["errors"],
                ), over_http
        assert {t for t, _, _ in BAD_INPUT} == {t.name for t in listed_tools()}
        assert (await ok(client, "get_task", task_id=task["id"]))["version"] == task["version"]


async def test_preview_reads_after_without_an_offset_as_wall_time(
    served: tuple[str, httpx.AsyncClient],
) -> None:
    base_url, _ = served
    async with mcp_http(base_url, ADMIN) as client:
        found = await ok(
            client,
            "preview_schedule",
            schedule_kind="cron",
            schedule_expr="0 17 * * *",
            timezone="America/New_York",
            after="2026-12-06T20:00:00",
            count=1,
        )
    # 20:00 in New York is after that day's 17:00 (20:00 UTC would have been before it)
    assert found == {"occurrences": ["2026-12-07T17:00:00-05:00"]}


async def test_a_tool_taking_one_of_two_arguments_says_whether_one_is_missing_or_both_came(
    served: tuple[str, httpx.AsyncClient],
) -> None:
    base_url, http = served
    task = (await http.post("/tasks", json=BRIEFING)).json()
    async with mcp_http(base_url, ADMIN) as client:
        for tool, first, second, both in (
            ("dry_run_pipeline", "task_id", "task", {"task_id": task["id"], "task": BRIEFING}),
            ("get_history", "task_id", "run_id", {"task_id": task["id"], "run_id": task["id"]}),
        ):
            missing = await refused(client, tool)
            assert missing["errors"] == [
                {"field": first, "reason": f"missing: give {first} or {second}"}
            ], missing
            assert missing["detail"] == f"{first}: missing: give {first} or {second}"
            twice = await refused(client, tool, **both)
            assert twice["errors"] == [
                {"field": first, "reason": f"give {first} or {second}, not both"}
            ], twice


async def test_numbers_json_cannot_carry_are_refused_naming_the_field_not_stored_as_null(
    served: tuple[str, httpx.AsyncClient],
) -> None:
    """The SDK's client writes NaN and infinities as null itself, so these go as raw JSON-RPC,
    as another client may write them (the HTTP API answers the same body 400)."""
    _, http = served
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    for tool, arguments, field in NON_FINITE:
        body = (
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"%s","arguments":%s}}'
        )
        response = await http.post(
            "/mcp", content=body % (tool.encode(), arguments), headers=headers
        )
        assert response.status_code == 200, response.text
        refused_as_not_finite(response.json(), field)
    assert (await http.get("/events")).json()["items"] == []


def test_the_tool_list_and_descriptions_match_the_snapshot() -> None:
    """A change to what models read about the tools must be deliberate: regenerate with
    ORDINAUT_UPDATE_SNAPSHOTS=1 and review the diff."""
    current = [
        tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in listed_tools()
    ]
    if os.environ.get("ORDINAUT_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, ensure_ascii=False) + "\n")
    assert json.loads(SNAPSHOT.read_text()) == current


async def test_tasks_and_runs_are_resources_as_the_api_shows_them(
    served: tuple[str, httpx.AsyncClient],
) -> None:
    base_url, http = served
    task = (await http.post("/tasks", json=BRIEFING)).json()
    run_id = (await http.post(f"/tasks/{task['id']}/run_now")).json()["run_id"]
    async with mcp_http(base_url, ADMIN) as client:
        templates = (await client.list_resource_templates()).resource_templates
        assert {t.uri_template for t in templates} == {
            "ordinaut://tasks/{id}",
            "ordinaut://runs/{id}",
        }
        for uri, path in (
            (f"ordinaut://tasks/{task['id']}", f"/tasks/{task['id']}"),
            (f"ordinaut://runs/{run_id}", f"/runs/{run_id}"),
        ):
            (content,) = (await client.read_resource(uri)).contents
            assert content.mime_type == "application/json"
            assert json.loads(content.text) == (await http.get(path)).json()  # type: ignore[union-attr]
        with pytest.raises(MCPError, match="no run"):
            await client.read_resource("ordinaut://runs/00000000-0000-4000-8000-000000000000")
        assert (await ok(client, "get_task", task_id=task["id"]))["id"] == task["id"]
