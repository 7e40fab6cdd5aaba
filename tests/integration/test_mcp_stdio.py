"""`ordinaut mcp` as a subprocess over stdio, with the SDK's own client."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from services.api.app import ApiConfig, create_app
from services.api.auth import admit_any_token
from services.mcp.http import McpMount
from services.runtime.admin_token import token_hash
from tests import processes
from tests.mcp_support import (
    BRIEFING,
    NON_FINITE,
    ok,
    raw_stdio,
    refused,
    refused_as_not_finite,
    schedule_run_and_approve,
)
from tests.tools_servers.http_tool_server import closed_port
from tests.workers import ADMIN, AUTH, running_workers, serve_in_thread

ROOT = Path(__file__).parent.parent.parent


def environment(database_url: str, redis_url: str, token: str) -> dict[str, str]:
    """The subprocess's environment: this checkout, the test's servers, the token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
    env.update(
        ORDINAUT_DATABASE_URL=database_url,
        ORDINAUT_REDIS_URL=redis_url,
        ORDINAUT_ADMIN_TOKEN=ADMIN,
        ORDINAUT_TOKEN=token,
        ORDINAUT_LOG_FORMAT="json",
        PYTHONPATH=str(ROOT),
    )
    return env


MCP_COMMAND = [sys.executable, "-m", "services.cli.main", "mcp"]


def ordinaut_mcp(env: dict[str, str], *args: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=MCP_COMMAND[0], args=[*MCP_COMMAND[1:], *args], env=env, cwd=str(ROOT)
    )


@pytest.fixture
async def served(database_url: str, redis_url: str) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    app = create_app(
        ApiConfig(database_url, redis_url, token_hash(ADMIN)), mounts=[McpMount(admit_any_token)]
    )
    with serve_in_thread(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url, headers=AUTH, timeout=30) as http:
            yield base_url, http


@pytest.mark.parametrize("mode", ["direct", "url"])
async def test_ordinaut_mcp_over_stdio_tells_the_same_story_as_http(
    served: tuple[str, httpx.AsyncClient], database_url: str, redis_url: str, mode: str
) -> None:
    base_url, http = served
    env = environment(database_url, redis_url, ADMIN)
    args = ("--url", base_url) if mode == "url" else ()
    # Any log line on stdout would break the protocol, so the story passing shows there is none.
    async with running_workers(database_url, redis_url), Client(ordinaut_mcp(env, *args)) as client:
        await schedule_run_and_approve(client, http)
        assert (await refused(client, "get_task", task_id="missing"))["status"] == 404
        assert (await ok(client, "list_tasks"))["items"]  # the session goes on


@pytest.mark.parametrize("mode", ["direct", "url"])
async def test_numbers_json_cannot_carry_are_refused_over_stdio_naming_the_field(
    served: tuple[str, httpx.AsyncClient],
    database_url: str,
    redis_url: str,
    tmp_path: Path,
    mode: str,
) -> None:
    """Raw JSON-RPC lines: the SDK's client would write these numbers as null itself. Relayed
    (--url), they would reach the API as null, so the relay refuses them as the server does."""
    base_url, http = served
    command = [*MCP_COMMAND, *(("--url", base_url) if mode == "url" else ())]
    env = environment(database_url, redis_url, ADMIN)
    async with raw_stdio(command, env, ROOT, tmp_path / "mcp.log") as mcp:
        for tool, arguments, field in NON_FINITE:
            params = b'{"name":"%s","arguments":%s}' % (tool.encode(), arguments)
            refused_as_not_finite(await mcp.request("tools/call", params), field)
        fine = b'{"name":"publish_event","arguments":{"topic":"ok.t","payload":{"a":2.5}}}'
        assert not (await mcp.request("tools/call", fine))["result"]["isError"]
    (event,) = (await http.get("/events")).json()["items"]
    assert event["data"]["payload"] == {"a": 2.5}


async def test_a_reader_token_over_stdio_cannot_create_tasks(
    served: tuple[str, httpx.AsyncClient], database_url: str, redis_url: str
) -> None:
    _, http = served
    agent = (await http.post("/agents", json={"name": "r", "scopes": ["tasks:read"]})).json()
    token = (await http.post(f"/agents/{agent['id']}/tokens", json={})).json()["token"]
    async with Client(ordinaut_mcp(environment(database_url, redis_url, token))) as client:
        assert (await refused(client, "create_task", **BRIEFING))["status"] == 403
        assert (await ok(client, "list_tasks"))["items"] == []
    assert (await http.get("/tasks")).json()["items"] == []


def test_ordinaut_mcp_refuses_a_bad_token_before_serving(database_url: str, redis_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "mcp"],
        env=environment(database_url, redis_url, "not-a-token"),
        cwd=ROOT,
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result
    assert result.stdout == ""  # stdout is the protocol's: nothing else is ever written there
    assert "ORDINAUT_TOKEN is not a valid token" in result.stderr


async def ordinaut_mcp_once(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`echo '{}' | ordinaut mcp ARGS`, to its exit."""
    return await asyncio.to_thread(
        subprocess.run,
        [*MCP_COMMAND, *args],
        env=env,
        cwd=ROOT,
        input="{}\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_relay_refuses_a_token_the_api_refuses_in_one_line(
    served: tuple[str, httpx.AsyncClient], database_url: str, redis_url: str
) -> None:
    base_url, _ = served
    env = environment(database_url, redis_url, "wrongtokenwrongtoken")
    result = await ordinaut_mcp_once(env, "--url", base_url)
    assert (result.returncode, result.stdout) == (2, ""), result
    assert result.stderr.splitlines() == [
        f"ordinaut: error: ORDINAUT_TOKEN is not a valid token (the API at {base_url} refused it)"
    ], result.stderr


async def test_the_relay_names_an_api_it_cannot_reach_in_one_line(
    database_url: str, redis_url: str
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = await ordinaut_mcp_once(environment(database_url, redis_url, ADMIN), "--url", url)
    assert (result.returncode, result.stdout) == (2, ""), result
    assert result.stderr.splitlines() == [
        f"ordinaut: error: the Ordinaut API at {url} is unreachable: Connection refused"
    ], result.stderr


async def test_the_relay_answers_tool_errors_while_the_api_is_down_and_recovers_with_it(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = processes.environment(database_url, redis_url, "ordinaut:events", tmp_path, ADMIN)
    api = processes.start_process("api", 1, env, tmp_path / "logs")
    try:
        await processes.ready(api)
        url = f"http://127.0.0.1:{api.api_port}"
        down = f"the Ordinaut API at {url} is unreachable: Connection refused"
        relay = ordinaut_mcp(environment(database_url, redis_url, ADMIN), "--url", url)
        async with Client(relay) as client:
            await ok(client, "create_task", **BRIEFING)
            await processes.kill(api)

            began = time.monotonic()
            result = await asyncio.wait_for(client.call_tool("list_tasks", {}), 20)
            assert time.monotonic() - began < 5  # at once, not after a timeout
            assert result.is_error, result
            assert result.content[0].text == f"Bad gateway (502): {down}"  # type: ignore[union-attr]
            assert result.structured_content is not None
            assert (result.structured_content["status"], result.structured_content["detail"]) == (
                502,
                down,
            )
            with pytest.raises(MCPError, match=down):
                await client.read_resource("ordinaut://tasks/any")

            api = processes.start_process("api", 2, env, tmp_path / "logs", api.api_port)
            await processes.ready(api)
            tasks = (await ok(client, "list_tasks"))["items"]
            assert [task["definition"]["title"] for task in tasks] == [BRIEFING["title"]]
    finally:
        if api.alive:
            await processes.kill(api)
