"""One outbound guard for every connection (http tools, http.request, webhooks, MCP over
HTTP, calls and imports): the same addresses refused, and every failure (DNS included) is a
recorded step failure or webhook attempt, never an exception that escapes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as redis
from litestar.testing import AsyncTestClient

from domain.events import ToolRegistered
from services.api.app import ApiConfig, create_app
from services.notify.service import NotifierConfig
from services.relay.service import RelayConfig
from services.runtime.admin_token import token_hash
from services.tools.errors import ToolCallError
from services.tools.invoker import ToolInvoker
from tests.notify_support import create_agent, delivery_records, finish_run, notifying, queue_run
from tests.relay_support import relaying, unique_stream
from tests.tools_servers.http_tool_server import serve
from tests.tools_servers.mcp_echo_server import build_server
from tests.workers import (
    ADMIN,
    AUTH,
    create_task,
    eventually,
    run_now,
    run_to_end,
    running_workers,
)

# A name that cannot resolve, and fails without a DNS query leaving the machine: longer than
# the 253 characters DNS allows, the resolver refuses it locally.
UNRESOLVABLE = ".".join(["a" * 60] * 5) + ".invalid"
BODY_SECRET = "internal-detail-9f2c"


@pytest.fixture(scope="module")
def mcp_port() -> Iterator[int]:
    server, _ = build_server()
    with serve(server.streamable_http_app()) as base_url:
        yield int(base_url.rsplit(":", 1)[1])


async def test_http_request_to_an_unresolvable_host_is_a_step_failure_on_error_continue_holds(
    client: httpx.AsyncClient, database_url: str, redis_url: str
) -> None:
    task = await create_task(
        client,
        [
            {
                "id": "call",
                "uses": "http.request",
                "with": {"url": f"http://{UNRESOLVABLE}/x"},
                "on_error": "continue",
            },
            {"id": "after", "uses": "debug.echo", "with": {"went_on": True}},
        ],
    )
    strict = await create_task(
        client,
        [{"id": "call", "uses": "http.request", "with": {"url": f"http://{UNRESOLVABLE}/x"}}],
        max_retries=1,
        backoff_strategy="fixed",
        backoff_base_seconds=0.1,
    )
    async with running_workers(database_url, redis_url):
        went_on = await run_to_end(client, await run_now(client, task["id"]))
        dead = await run_to_end(client, await run_now(client, strict["id"]))
    assert went_on["status"] == "succeeded", went_on
    call, after = went_on["steps"]
    assert call["status"] == "failed"
    assert "cannot resolve" in call["error"]
    assert after["output"] == {"went_on": True}
    # A name that does not resolve may resolve later: retried, then dead, never a crash loop.
    assert (dead["status"], dead["attempt"]) == ("dead", 2), dead
    assert "cannot resolve" in dead["error"]


@pytest.fixture
async def stream(redis_url: str) -> AsyncIterator[str]:
    name = unique_stream()
    yield name
    async with redis.Redis.from_url(redis_url) as client:
        await client.delete(name)


async def test_a_webhook_to_an_unresolvable_host_is_recorded_and_given_up(
    pool: asyncpg.Pool, database_url: str, redis_url: str, stream: str
) -> None:
    config = NotifierConfig(
        stream=stream,
        start_id="0",
        max_attempts=2,
        timeout_seconds=0.5,
        backoff_base_seconds=0.1,
        backoff_max_seconds=0.2,
        block_ms=200,
    )
    agent = await create_agent(pool, f"http://{UNRESOLVABLE}/hook")
    position = await finish_run(pool, await queue_run(pool, agent))

    async def ended() -> bool:
        types = [t for t, _, _ in await delivery_records(pool, agent, position)]
        return bool(types) and types[-1] == "webhook.failed"

    async with (
        relaying(database_url, redis_url, RelayConfig(stream=stream, idle_seconds=0.5)),
        notifying(pool, redis_url, config),
    ):
        await eventually(ended)
    records = await delivery_records(pool, agent, position)
    assert [t for t, _, _ in records] == [
        "webhook.attempted",
        "webhook.attempted",
        "webhook.failed",
    ]
    assert all("cannot resolve" in event.error for t, event, _ in records[:2])


@pytest.fixture
async def api(database_url: str, redis_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(ApiConfig(database_url, redis_url, token_hash(ADMIN)))
    async with AsyncTestClient(app) as test_client:
        yield test_client


async def test_an_mcp_import_is_refused_where_http_tools_are(
    api: AsyncTestClient[Any], mcp_port: int
) -> None:
    # 0.0.0.0 reaches this machine, but it is no public unicast address: http tools are
    # refused there by default, and so is an MCP server.
    endpoint = f"http://0.0.0.0:{mcp_port}/mcp"
    response = await api.post(
        "/tools/mcp_servers", json={"name": "sneak", "endpoint": endpoint}, headers=AUTH
    )
    assert response.status_code == 502, response.text
    detail = response.json()["detail"]
    assert "refused to connect" in detail
    assert "not a public unicast address" in detail
    assert (await api.get("/tools/sneak.add", headers=AUTH)).status_code == 404


async def test_an_mcp_call_is_refused_where_http_tools_are(mcp_port: int) -> None:
    tool = ToolRegistered(
        address="echo.add", transport="mcp", endpoint=f"http://0.0.0.0:{mcp_port}/mcp"
    )
    strict = ToolInvoker(outbound_allow=())  # loopback too is refused without the allow-list
    loopback = ToolRegistered(
        address="echo.add", transport="mcp", endpoint=f"http://127.0.0.1:{mcp_port}/mcp"
    )
    invoker = ToolInvoker()
    try:
        for calling, target in ((invoker, tool), (strict, loopback)):
            with pytest.raises(ToolCallError) as caught:
                await calling.call(target, {"a": 1, "b": 2}, idempotency_key="k", timeout=10)
            assert "refused to connect" in caught.value.message
            assert not caught.value.retryable
        answer = await invoker.call(loopback, {"a": 1, "b": 2}, idempotency_key="k", timeout=10)
        assert answer == {"result": 3}
    finally:
        await invoker.aclose()
        await strict.aclose()


async def _talkative_error(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An MCP endpoint that refuses everything with a JSON-RPC error full of its internals."""
    if scope["type"] != "http":
        return
    body = (
        b'{"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "'
        + BODY_SECRET.encode()
        + b' at db.internal:5432"}}'
    )
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def test_an_mcp_import_failure_names_its_class_without_echoing_the_server(
    api: AsyncTestClient[Any],
) -> None:
    with serve(_talkative_error, lifespan="off") as base_url:
        response = await api.post(
            "/tools/mcp_servers",
            json={"name": "chatty", "endpoint": f"{base_url}/mcp"},
            headers=AUTH,
        )
    assert response.status_code == 502, response.text
    detail = response.json()["detail"]
    assert BODY_SECRET not in detail
    assert "db.internal" not in detail
    assert "MCP error -32600" in detail
