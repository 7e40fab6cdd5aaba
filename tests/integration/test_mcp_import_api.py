"""POST /tools/mcp_servers: a whole MCP server's tools into the catalog, from its tools/list."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from domain.events import ToolRegistered
from services.api.app import ApiConfig, create_app
from services.runtime.admin_token import token_hash
from services.tools.invoker import ToolInvoker
from tests.tools_servers.http_tool_server import closed_port, serve
from tests.tools_servers.mcp_echo_server import build_server

ADMIN = "admin-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
MCP_SCRIPT = Path(__file__).parent.parent / "tools_servers" / "mcp_echo_server.py"
STDIO = [sys.executable, str(MCP_SCRIPT)]
ADDRESSES = [
    "echo.add",
    "echo.die",
    "echo.echo",
    "echo.fail",
    "echo.greet",
    "echo.handshakes",
    "echo.idempotency_key",
    "echo.slow",
]


@pytest.fixture(scope="module")
def mcp_endpoint() -> Iterator[str]:
    server, _ = build_server()
    with serve(server.streamable_http_app()) as base_url:
        yield f"{base_url}/mcp"


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(ApiConfig(database_url, redis_url, token_hash(ADMIN)))
    async with AsyncTestClient(app) as test_client:
        yield test_client


async def import_server(client: AsyncTestClient[Any], body: dict[str, Any], status: int) -> Any:
    response = await client.post("/tools/mcp_servers", json=body, headers=AUTH)
    assert response.status_code == status, response.text
    return response.json()


async def tool_events(client: AsyncTestClient[Any]) -> list[dict[str, Any]]:
    page = (await client.get("/events", headers=AUTH)).json()
    return [e for e in page["items"] if e["type"].startswith("tool.")]


async def test_an_mcp_server_over_http_is_imported_tool_by_tool(
    client: AsyncTestClient[Any], mcp_endpoint: str
) -> None:
    body = {"name": "echo", "endpoint": mcp_endpoint, "scopes": ["notify"], "timeout_seconds": 9}
    imported = await import_server(client, body, 201)
    assert [t["address"] for t in imported["items"]] == ADDRESSES
    assert imported["skipped"] == [
        {
            "name": "search/web",
            "reason": "address: must be dotted names of letters, digits, _ "
            "or -, e.g. weather-mcp.forecast",
        },
    ]
    add = (await client.get("/tools/echo.add", headers=AUTH)).json()
    assert add == next(t for t in imported["items"] if t["address"] == "echo.add")
    assert (add["transport"], add["endpoint"], add["command"]) == ("mcp", mcp_endpoint, None)
    assert (add["scopes"], add["timeout_seconds"], add["builtin"]) == (["notify"], 9, False)
    assert add["input_schema"]["required"] == ["a", "b"]
    assert add["output_schema"]["properties"]["result"]["type"] == "integer"
    events = await tool_events(client)
    assert sorted(e["stream"] for e in events) == [f"tool-{a}" for a in ADDRESSES]
    assert {e["type"] for e in events} == {"tool.registered"}

    again = await import_server(client, body, 200)  # nothing changed: nothing recorded
    assert again == imported
    assert len(await tool_events(client)) == len(ADDRESSES)


async def test_a_stdio_server_is_imported_and_its_tools_can_be_called(
    client: AsyncTestClient[Any],
) -> None:
    imported = await import_server(client, {"name": "local", "command": STDIO}, 201)
    assert len(imported["items"]) == len(ADDRESSES)
    view = (await client.get("/tools/local.add", headers=AUTH)).json()
    fields = {k: v for k, v in view.items() if k != "builtin"}
    tool = msgspec.convert(fields, ToolRegistered)
    assert tool.command == tuple(STDIO)
    invoker = ToolInvoker()
    try:
        result = await invoker.call(tool, {"a": 40, "b": 2}, idempotency_key="k", timeout=20)
    finally:
        await invoker.aclose()
    assert result == {"result": 42}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": "echo.v2", "command": STDIO}, 422, "name"),
        ({"name": "echo"}, 422, "endpoint"),
        ({"name": "echo", "endpoint": "ftp://127.0.0.1/mcp"}, 422, "endpoint"),
        ({"name": "echo", "command": STDIO, "scopes": ["Bad"]}, 422, "scopes[0]"),
        ({"name": "echo", "command": ["/nonexistent/mcp-server"]}, 422, "command"),
        ({"name": "echo", "command": ["no-such-program-on-path"]}, 422, "command"),
        ({"name": "echo", "command": [sys.executable, "-c", "pass"]}, 502, None),
    ],
)
async def test_bad_imports_are_refused_as_problems(
    client: AsyncTestClient[Any], body: dict[str, Any], status: int, field: str | None
) -> None:
    problem = await import_server(client, body, status)
    assert problem["status"] == status
    if field is not None:
        assert problem["errors"][0]["field"] == field
    else:
        assert problem["detail"].startswith("could not connect to MCP server ")
    assert await tool_events(client) == []


async def test_an_unreachable_endpoint_is_a_bad_gateway(client: AsyncTestClient[Any]) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}/mcp"
    response = await client.post(
        "/tools/mcp_servers", json={"name": "gone", "endpoint": endpoint}, headers=AUTH
    )
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith(f"could not connect to MCP server {endpoint}: ")


async def test_importing_needs_the_admin_scope(client: AsyncTestClient[Any]) -> None:
    response = await client.post("/tools/mcp_servers", json={"name": "x", "command": STDIO})
    assert response.status_code == 401
