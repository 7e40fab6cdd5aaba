"""Helpers for MCP tests: the SDK's own client over streamable HTTP, and reading its results."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


@contextlib.asynccontextmanager
async def mcp_http(base_url: str, token: str) -> AsyncIterator[Client]:
    """An MCP client of ``base_url``/mcp, sending ``token`` as its bearer token."""
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http, Client(streamable_http_client(f"{base_url}/mcp", http_client=http)) as client:
        yield client


class RawStdio:
    """An MCP client over stdio that writes its JSON-RPC lines itself, so a test can send what
    the SDK's client cannot: it writes NaN and the infinities as null before they leave it."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._ids = 0

    async def request(self, method: str, params: bytes) -> dict[str, Any]:
        """Send ``params`` (JSON text, as it is) and wait for the answer with the same id."""
        self._ids += 1
        await self._send(
            b'{"jsonrpc":"2.0","id":%d,"method":"%s","params":%s}'
            % (self._ids, method.encode(), params)
        )
        assert self._process.stdout is not None
        while True:
            line = await asyncio.wait_for(self._process.stdout.readline(), 30)
            assert line, "the server closed stdout"
            message = json.loads(line)
            if message.get("id") == self._ids:
                return message  # type: ignore[no-any-return]

    async def notify(self, method: str) -> None:
        await self._send(b'{"jsonrpc":"2.0","method":"%s"}' % method.encode())

    async def _send(self, line: bytes) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(line + b"\n")
        await self._process.stdin.drain()


_HELLO = json.dumps(
    {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    }
).encode()


@contextlib.asynccontextmanager
async def raw_stdio(
    command: list[str], env: dict[str, str], cwd: Path, log: Path
) -> AsyncIterator[RawStdio]:
    """``command`` as an MCP server on stdio, initialized; its stderr goes to ``log``."""
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=sink,
            env=env,
            cwd=cwd,
        )
    session = RawStdio(process)
    try:
        assert "result" in await session.request("initialize", _HELLO), f"see {log}"
        await session.notify("notifications/initialized")
        yield session
    finally:
        assert process.stdin is not None
        process.stdin.close()  # end of input: the server exits
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()


# Arguments holding numbers JSON has no value for, as a client may write them, and the field
# each refusal must name: every tool's arguments are checked before they are read.
NON_FINITE = [
    ("publish_event", b'{"topic":"ok.t","payload":{"a":1e309}}', "payload.a"),
    ("publish_event", b'{"topic":"ok.t","payload":{"a":[1,{"b":NaN}]}}', "payload.a[1].b"),
    (
        "preview_schedule",
        b'{"schedule_kind":"cron","schedule_expr":"* * * * *","count":-Infinity}',
        "count",
    ),
]


def refused_as_not_finite(answer: dict[str, Any], field: str) -> None:
    """``answer`` (a JSON-RPC response to tools/call) is a tool error naming ``field``."""
    result = answer["result"]
    assert result["isError"], answer
    problem = result["structuredContent"]
    assert (problem["status"], problem["detail"]) == (422, f"{field}: not a finite number")
    assert problem["errors"] == [{"field": field, "reason": "not a finite number"}], problem


async def ok(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """The structured result of a tool call that must succeed."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, (tool, result.content)
    assert result.structured_content is not None
    return result.structured_content


async def refused(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """The problem document of a tool call that must fail."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, (tool, result.structured_content)
    assert result.structured_content is not None
    return result.structured_content


ECHO_AFTER_APPROVAL = [
    {
        "id": "ask",
        "uses": "orchestrator.request_approval",
        "with": {"message": "Send to ${params.who}?", "data": ["a", "b", "c"]},
    },
    {
        "id": "send",
        "uses": "debug.echo",
        "if": "steps.ask.status == 'approved'",
        "with": {"items": "${steps.ask.approved_items}"},
    },
]
BRIEFING = {
    "title": "Morning briefing",
    "key": "morning-briefing",
    "schedule_kind": "rrule",
    "schedule_expr": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=30",
    "timezone": "Europe/Chisinau",
    "payload": {"pipeline": ECHO_AFTER_APPROVAL, "params": {"who": "Ana"}},
}
TOOL_NAMES = {
    "create_task",
    "update_task",
    "list_tasks",
    "get_task",
    "preview_schedule",
    "run_task_now",
    "pause_task",
    "resume_task",
    "snooze_task",
    "cancel_task",
    "delete_task",
    "list_runs",
    "get_run",
    "approve_run",
    "reject_run",
    "rerun_run",
    "publish_event",
    "list_tools",
    "dry_run_pipeline",
    "get_history",
}


async def run_reaching(client: Client, run_id: str, status: str, within: float = 20.0) -> Any:
    """get_run over MCP until the run has ``status``."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        run = await ok(client, "get_run", run_id=run_id)
        if run["status"] == status:
            return run
        assert run["status"] not in ("dead", "canceled"), run
        assert asyncio.get_running_loop().time() < deadline, run
        await asyncio.sleep(0.1)


async def schedule_run_and_approve(client: Client, http: httpx.AsyncClient) -> None:
    """The story every transport must tell: list tools, create, preview, run now, approve,
    read history; each result equals what the HTTP API answers."""
    auth = {"Authorization": http.headers["Authorization"]}
    assert {tool.name for tool in (await client.list_tools()).tools} == TOOL_NAMES
    created = await client.call_tool("create_task", BRIEFING)
    assert not created.is_error, created.content
    task = created.structured_content
    assert task is not None
    assert created.content[0].text.startswith("Scheduled 'Morning briefing' (active); next run ")  # type: ignore[union-attr]
    assert created.content[0].text.endswith(("EET", "EEST"))  # type: ignore[union-attr]
    assert task == (await http.get(f"/tasks/{task['id']}", headers=auth)).json()

    preview = await ok(client, "preview_schedule", task_id=task["id"], count=5)
    over_http = await http.get(f"/tasks/{task['id']}/occurrences?count=5", headers=auth)
    assert preview == over_http.json()
    rule = await ok(
        client,
        "preview_schedule",
        schedule_kind="cron",
        schedule_expr="30 8 * * 1-5",
        timezone="Europe/Chisinau",
        count=5,
    )
    assert rule == preview

    run_id = (await ok(client, "run_task_now", task_id=task["id"]))["run_id"]
    await run_reaching(client, run_id, "awaiting_approval")
    approved = await ok(client, "approve_run", run_id=run_id, approved_items=["a", "b"])
    assert approved["approval"] is not None
    run = await run_reaching(client, run_id, "succeeded")
    assert {s["id"]: s.get("output") for s in run["steps"]}["send"] == {"items": ["a", "b"]}
    assert run == (await http.get(f"/runs/{run_id}", headers=auth)).json()

    history = await ok(client, "get_history", task_id=task["id"])
    assert history == (await http.get(f"/tasks/{task['id']}/history", headers=auth)).json()
    run_history = await ok(client, "get_history", run_id=run_id)
    assert run_history == (await http.get(f"/runs/{run_id}/history", headers=auth)).json()
    types = [event["type"] for event in run_history["items"]]
    assert "approval.requested" in types, types
    assert types[-1] == "run.succeeded", types
