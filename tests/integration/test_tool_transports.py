"""Calling tools against real local servers: HTTP tools, MCP over stdio and streamable HTTP.

Every server runs on 127.0.0.1: an HTTP tool server and an MCP server in uvicorn threads
of this process, and the same MCP server as a stdio subprocess.
"""

from __future__ import annotations

import asyncio
import pickle
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from domain.events import ToolRegistered
from domain.tools import BUILTIN_TOOLS
from services.tools.errors import ToolCallError
from services.tools.invoker import ToolInvoker
from services.tools.mcp import IDEMPOTENCY_META_KEY
from tests.tools_servers.http_tool_server import ToolServer, closed_port, serve
from tests.tools_servers.mcp_echo_server import MethodCounter, build_server

MCP_SCRIPT = Path(__file__).parent.parent / "tools_servers" / "mcp_echo_server.py"
STDIO = (sys.executable, str(MCP_SCRIPT))
KEY = "run-7/step-notify"


@pytest.fixture(scope="module")
def tool_server() -> Iterator[tuple[ToolServer, str]]:
    app = ToolServer()
    with serve(app, lifespan="off") as base_url:
        yield app, base_url


@pytest.fixture(scope="module")
def mcp_http() -> Iterator[tuple[MethodCounter, str]]:
    server, counter = build_server()
    with serve(server.streamable_http_app()) as base_url:
        yield counter, f"{base_url}/mcp"


@pytest.fixture
async def invoker() -> AsyncIterator[ToolInvoker]:
    created = ToolInvoker()
    yield created
    await created.aclose()


def http_tool(endpoint: str, **changes: Any) -> ToolRegistered:
    return ToolRegistered(address="crm.tool", transport="http", endpoint=endpoint, **changes)


def mcp_tool(name: str, target: str | tuple[str, ...], **changes: Any) -> ToolRegistered:
    where = {"endpoint": target} if isinstance(target, str) else {"command": target}
    return ToolRegistered(address=f"echo.{name}", transport="mcp", **where, **changes)


async def failure(call: Any) -> ToolCallError:
    with pytest.raises(ToolCallError) as caught:
        await call
    return caught.value


# --- the http transport -------------------------------------------------------------------


async def test_http_tool_gets_its_input_as_json_with_the_idempotency_key(
    invoker: ToolInvoker, tool_server: tuple[ToolServer, str]
) -> None:
    app, base = tool_server
    output = await invoker.call(
        http_tool(f"{base}/echo"), {"chat_id": 1, "text": "hi"}, idempotency_key=KEY, timeout=5
    )
    assert output == {"input": {"chat_id": 1, "text": "hi"}, "idempotency_key": KEY}
    sent = app.received[-1]
    assert (sent.method, sent.headers["content-type"]) == ("POST", "application/json")


@pytest.mark.parametrize(
    ("path", "retryable", "retry_after"),
    [
        ("/status/500", True, None),
        ("/status/503", True, None),
        ("/status/429", True, 7.0),
        ("/status/400", False, None),
        ("/status/404", False, None),
    ],
)
async def test_http_tool_fails_on_a_status_that_is_not_2xx(
    invoker: ToolInvoker,
    tool_server: tuple[ToolServer, str],
    path: str,
    retryable: bool,
    retry_after: float | None,
) -> None:
    status = path.rsplit("/", 1)[1]
    error = await failure(
        invoker.call(http_tool(f"{tool_server[1]}{path}"), {}, idempotency_key=KEY, timeout=5)
    )
    assert error.message.startswith(f"HTTP {status} from {tool_server[1]}{path}")
    assert f"status {status}: database exploded" in error.message
    assert (error.retryable, error.retry_after) == (retryable, retry_after)


async def test_http_tool_fails_on_a_body_that_is_not_json(
    invoker: ToolInvoker, tool_server: tuple[ToolServer, str]
) -> None:
    error = await failure(
        invoker.call(http_tool(f"{tool_server[1]}/not-json"), {}, idempotency_key=KEY, timeout=5)
    )
    assert "HTTP 200" in error.message
    assert "not JSON" in error.message
    assert "<html><p>Oops</p></html>" in error.message
    assert not error.retryable


async def test_http_tool_edge_answers(
    invoker: ToolInvoker, tool_server: tuple[ToolServer, str]
) -> None:
    base = tool_server[1]
    assert (
        await invoker.call(http_tool(f"{base}/empty"), {}, idempotency_key=KEY, timeout=5) is None
    )
    moved = await failure(
        invoker.call(
            http_tool(f"{base}/redirect?to={base}/echo"), {}, idempotency_key=KEY, timeout=5
        )
    )
    assert moved.message.startswith(f"HTTP 302 from {base}/redirect")
    assert f"{base}/echo" in moved.message
    assert not moved.retryable
    big = await failure(invoker.call(http_tool(f"{base}/big"), {}, idempotency_key=KEY, timeout=5))
    assert "larger than 1048576 bytes" in big.message
    down = await failure(
        invoker.call(
            http_tool(f"http://127.0.0.1:{closed_port()}/x"), {}, idempotency_key=KEY, timeout=5
        )
    )
    assert down.message.startswith("could not reach http://127.0.0.1:")
    assert down.retryable


async def test_a_slow_tool_times_out_retryably(
    invoker: ToolInvoker, tool_server: tuple[ToolServer, str]
) -> None:
    started = time.monotonic()
    error = await failure(
        invoker.call(
            http_tool(f"{tool_server[1]}/slow?seconds=3"), {}, idempotency_key=KEY, timeout=0.3
        )
    )
    assert (error.message, error.retryable) == ("crm.tool timed out after 0.3 s", True)
    assert time.monotonic() - started < 2


# --- the http.request builtin ---------------------------------------------------------------


async def test_http_request_returns_any_status_with_headers_and_body(
    invoker: ToolInvoker, tool_server: tuple[ToolServer, str]
) -> None:
    tool, base = BUILTIN_TOOLS["http.request"], tool_server[1]
    got = await invoker.call(
        tool,
        {
            "url": f"{base}/reflect",
            "method": "POST",
            "query": {"page": 2, "all": True},
            "json": {"a": 1},
            "headers": {"X-Trace": "t1"},
        },
        idempotency_key=KEY,
        timeout=5,
    )
    assert got["status"] == 200
    assert got["headers"]["x-tool"] == "a, b"
    reflected = got["json"]
    assert (reflected["method"], reflected["query"]) == ("POST", "page=2&all=true")
    assert (reflected["body"], reflected["headers"]["x-trace"]) == ('{"a":1}', "t1")
    assert reflected["headers"]["content-type"] == "application/json"
    failed = await invoker.call(tool, {"url": f"{base}/status/503"}, idempotency_key=KEY, timeout=5)
    assert failed["status"] == 503
    assert failed["text"] == "status 503: database exploded"
    page = await invoker.call(tool, {"url": f"{base}/not-json"}, idempotency_key=KEY, timeout=5)
    assert page["text"] == "<html><p>Oops</p></html>"


async def test_http_request_follows_redirects_only_on_the_same_origin(
    invoker: ToolInvoker, tool_server: tuple[ToolServer, str]
) -> None:
    app, base = tool_server
    tool = BUILTIN_TOOLS["http.request"]
    followed = await invoker.call(
        tool, {"url": f"{base}/redirect?to=/reflect"}, idempotency_key=KEY, timeout=5
    )
    assert (followed["status"], followed["json"]["method"]) == (200, "GET")
    elsewhere = base.replace("127.0.0.1", "localhost") + "/reflect"
    count = len(app.received)
    kept = await invoker.call(
        tool, {"url": f"{base}/redirect?to={elsewhere}"}, idempotency_key=KEY, timeout=5
    )
    assert (kept["status"], kept["headers"]["location"]) == (302, elsewhere)
    assert len(app.received) == count + 1  # the other host was never asked


async def test_http_request_keeps_no_cookies_between_calls(
    invoker: ToolInvoker, tool_server: tuple[ToolServer, str]
) -> None:
    tool, base = BUILTIN_TOOLS["http.request"], tool_server[1]
    await invoker.call(tool, {"url": f"{base}/set-cookie"}, idempotency_key=KEY, timeout=5)
    later = await invoker.call(tool, {"url": f"{base}/reflect"}, idempotency_key=KEY, timeout=5)
    assert "cookie" not in later["json"]["headers"]


# --- schemas and builtins -------------------------------------------------------------------


async def test_schema_violations_name_the_path_and_the_schema_rule(
    invoker: ToolInvoker, tool_server: tuple[ToolServer, str]
) -> None:
    app, base = tool_server
    item = {"type": "object", "properties": {"email": {"type": "string"}}}
    strict_in = {"type": "object", "properties": {"items": {"type": "array", "items": item}}}
    count = len(app.received)
    bad_input = await failure(
        invoker.call(
            http_tool(f"{base}/echo", input_schema=strict_in),
            {"items": [{"email": 7}]},
            idempotency_key=KEY,
            timeout=5,
        )
    )
    assert bad_input.message == (
        "crm.tool: input.items[0].email: 7 is not of type 'string' "
        "(schema: properties.items.items.properties.email.type)"
    )
    assert not bad_input.retryable
    assert len(app.received) == count  # never sent
    strict_out = {"properties": {"idempotency_key": {"type": "integer"}}}
    bad_output = await failure(
        invoker.call(
            http_tool(f"{base}/echo", output_schema=strict_out), {}, idempotency_key=KEY, timeout=5
        )
    )
    assert bad_output.message.startswith(
        f"crm.tool: output.idempotency_key: '{KEY}' is not of type 'integer'"
    )
    assert bad_output.message.endswith("(schema: properties.idempotency_key.type)")
    assert not bad_output.retryable


async def test_builtins_echo_or_are_left_to_the_runner(invoker: ToolInvoker) -> None:
    echoed = await invoker.call(
        BUILTIN_TOOLS["debug.echo"], {"a": [1, 2]}, idempotency_key=KEY, timeout=1
    )
    assert echoed == {"a": [1, 2]}
    refused = await failure(
        invoker.call(
            BUILTIN_TOOLS["orchestrator.publish_event"],
            {"topic": "x"},
            idempotency_key=KEY,
            timeout=1,
        )
    )
    assert "run by the pipeline runner" in refused.message
    assert not refused.retryable
    bad = await failure(
        invoker.call(
            BUILTIN_TOOLS["http.request"], {"url": "ftp://x"}, idempotency_key=KEY, timeout=1
        )
    )
    assert bad.message.startswith("http.request: input.url: 'ftp://x' does not match")


# --- the mcp transport ----------------------------------------------------------------------


@pytest.fixture(params=["stdio", "http"])
def mcp_target(
    request: pytest.FixtureRequest, mcp_http: tuple[MethodCounter, str]
) -> str | tuple[str, ...]:
    return STDIO if request.param == "stdio" else mcp_http[1]


async def test_mcp_tools_answer_structured_json_or_text(
    invoker: ToolInvoker, mcp_target: str | tuple[str, ...]
) -> None:
    async def call(name: str, arguments: dict[str, Any]) -> Any:
        return await invoker.call(
            mcp_tool(name, mcp_target), arguments, idempotency_key=KEY, timeout=20
        )

    assert await call("add", {"a": 2, "b": 3}) == {"result": 5}  # structured content
    echoed = await call("echo", {"text": "hi"})  # one text block holding JSON
    assert echoed["text"] == "hi"
    assert await call("greet", {"name": "Ada"}) == {"text": "Hello, Ada"}  # plain text
    assert await call("idempotency_key", {}) == {"key": KEY}  # sent in _meta
    assert IDEMPOTENCY_META_KEY == "ordinaut/idempotency-key"


async def test_mcp_tool_errors_are_not_retryable(
    invoker: ToolInvoker, mcp_target: str | tuple[str, ...]
) -> None:
    failed = await failure(
        invoker.call(
            mcp_tool("fail", mcp_target),
            {"reason": "no such chat"},
            idempotency_key=KEY,
            timeout=20,
        )
    )
    assert failed.message.startswith("echo.fail failed: ")
    assert "no such chat" in failed.message
    assert not failed.retryable
    unknown = await failure(
        invoker.call(mcp_tool("missing", mcp_target), {}, idempotency_key=KEY, timeout=20)
    )
    assert "missing" in unknown.message
    assert not unknown.retryable
    strict = {"properties": {"text": {"type": "integer"}}}
    bad = await failure(
        invoker.call(
            mcp_tool("echo", mcp_target, output_schema=strict),
            {"text": "x"},
            idempotency_key=KEY,
            timeout=20,
        )
    )
    assert bad.message.startswith("echo.echo: output.text: 'x' is not of type 'integer'")


async def test_mcp_sessions_are_reused_even_for_concurrent_calls(
    invoker: ToolInvoker, mcp_http: tuple[MethodCounter, str]
) -> None:
    counter, endpoint = mcp_http
    before = counter.handshakes
    calls = [
        invoker.call(
            mcp_tool("add", endpoint), {"a": i, "b": 1}, idempotency_key=f"k{i}", timeout=20
        )
        for i in range(10)
    ]
    assert await asyncio.gather(*calls) == [{"result": i + 1} for i in range(10)]
    assert await invoker.call(
        mcp_tool("greet", endpoint), {"name": "B"}, idempotency_key=KEY, timeout=20
    ) == {"text": "Hello, B"}
    assert counter.handshakes == before + 1
    stdio = await asyncio.gather(
        *(
            invoker.call(mcp_tool("handshakes", STDIO), {}, idempotency_key=KEY, timeout=20)
            for _ in range(5)
        )
    )
    assert stdio == [stdio[0]] * 5  # one process
    assert stdio[0]["handshakes"] == 1


async def test_a_dead_stdio_server_is_restarted_once(invoker: ToolInvoker) -> None:
    first = await invoker.call(
        mcp_tool("echo", STDIO), {"text": "a"}, idempotency_key=KEY, timeout=20
    )
    assert await invoker.call(mcp_tool("die", STDIO), {}, idempotency_key=KEY, timeout=20) == {
        "result": "bye"
    }
    await asyncio.sleep(0.5)  # the server has exited
    second = await invoker.call(
        mcp_tool("echo", STDIO), {"text": "b"}, idempotency_key=KEY, timeout=20
    )
    assert second["text"] == "b"
    assert second["pid"] != first["pid"]


async def test_an_mcp_call_times_out_and_the_session_lives_on(
    invoker: ToolInvoker, mcp_target: str | tuple[str, ...]
) -> None:
    await invoker.call(
        mcp_tool("add", mcp_target), {"a": 1, "b": 1}, idempotency_key=KEY, timeout=20
    )
    error = await failure(
        invoker.call(mcp_tool("slow", mcp_target), {"seconds": 5}, idempotency_key=KEY, timeout=0.3)
    )
    assert (error.message, error.retryable) == ("echo.slow timed out after 0.3 s", True)
    after = await invoker.call(
        mcp_tool("handshakes", mcp_target), {}, idempotency_key=KEY, timeout=20
    )
    if mcp_target == STDIO:
        assert after["handshakes"] == 1


async def test_an_unreachable_mcp_server_fails_retryably(invoker: ToolInvoker) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}/mcp"
    error = await failure(
        invoker.call(mcp_tool("add", endpoint), {}, idempotency_key=KEY, timeout=20)
    )
    assert error.message.startswith(f"could not connect to MCP server {endpoint}: ")
    assert error.retryable
    missing = await failure(
        invoker.call(
            mcp_tool("add", ("/nonexistent/mcp-server",)), {}, idempotency_key=KEY, timeout=20
        )
    )
    assert "/nonexistent/mcp-server" in missing.message
    assert not missing.retryable


def test_tool_call_errors_survive_pickling() -> None:
    error = ToolCallError("HTTP 429 from x", retryable=True, retry_after=7.0)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.retryable, copy.retry_after) == ("HTTP 429 from x", True, 7.0)
