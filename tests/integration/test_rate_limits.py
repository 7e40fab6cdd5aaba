"""API rate limits: per agent and route group, shared by API processes through Redis."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis.asyncio as redis

from domain.rate_limits import RateLimit, RateLimits
from services.api.app import ApiConfig, create_app
from services.runtime.admin_token import token_hash
from tests.tools_servers.http_tool_server import closed_port
from tests.workers import ADMIN, AUTH, serve_in_thread

# Slow refill, so only the burst is available for the few seconds a test takes.
TIGHT = RateLimits(commands=RateLimit(0.05, 3), reads=RateLimit(0.05, 4), events=None)


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are removed afterwards."""
    name = f"test-ratelimit-{uuid.uuid4().hex[:12]}:"
    yield name
    client = redis.Redis.from_url(redis_url)
    try:
        async for key in client.scan_iter(match=f"{name}*"):
            await client.delete(key)
    finally:
        await client.aclose()


@contextlib.contextmanager
def api_process(
    database_url: str, redis_url: str, limits: RateLimits, prefix: str
) -> Iterator[str]:
    """One API app (as `ordinaut api` would run it) served on its own port; its base URL."""
    config = ApiConfig(
        database_url, redis_url, token_hash(ADMIN), rate_limits=limits, rate_limit_prefix=prefix
    )
    with serve_in_thread(create_app(config)) as base_url:
        yield base_url


async def _agent_headers(client: httpx.AsyncClient) -> dict[str, str]:
    agent = await client.post(
        "/agents", json={"name": "reader", "scopes": ["tasks:read"]}, headers=AUTH
    )
    token = await client.post(f"/agents/{agent.json()['id']}/tokens", json={}, headers=AUTH)
    return {"Authorization": f"Bearer {token.json()['token']}"}


async def test_a_burst_across_two_api_processes_gets_429_with_retry_after(
    database_url: str, redis_url: str, prefix: str
) -> None:
    with (
        api_process(database_url, redis_url, TIGHT, prefix) as first,
        api_process(database_url, redis_url, TIGHT, prefix) as second,
    ):
        async with httpx.AsyncClient(base_url=first) as a, httpx.AsyncClient(base_url=second) as b:
            agent = await _agent_headers(a)  # one command of the admin's 3
            answers = [await (a if i % 2 else b).get("/tasks", headers=AUTH) for i in range(8)]
            statuses = [r.status_code for r in answers]
            # The bucket is shared: 4 reads in all, whichever process served them.
            assert statuses[:4] == [200] * 4, statuses
            assert statuses[4:] == [429] * 4, statuses
            refused = answers[-1]
            assert refused.headers["content-type"] == "application/problem+json"
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.json()["title"] == "Too many requests"
            assert "reads" in refused.json()["detail"]
            # Per agent and per group: another agent reads, the admin still has commands.
            assert (await b.get("/tasks", headers=agent)).status_code == 200
            body = {"title": "t", "schedule_kind": "cron", "schedule_expr": "0 0 1 1 *"}
            assert (await b.post("/tasks", json=body, headers=AUTH)).status_code == 201
            assert (await a.get("/health/live")).status_code == 200  # never limited
            assert (await a.get("/health/ready")).status_code == 200


async def test_requests_go_through_when_redis_is_down(
    database_url: str, redis_url: str, prefix: str
) -> None:
    down = f"redis://127.0.0.1:{closed_port()}/0"
    with api_process(database_url, down, TIGHT, prefix) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            statuses = [(await client.get("/tasks", headers=AUTH)).status_code for _ in range(8)]
            body = {"title": "t", "schedule_kind": "cron", "schedule_expr": "0 0 1 1 *"}
            created = [await client.post("/tasks", json=body, headers=AUTH) for _ in range(5)]
    assert statuses == [200] * 8
    assert [r.status_code for r in created] == [201] * 5


async def test_an_agent_s_own_limit_replaces_the_default(
    database_url: str, redis_url: str, prefix: str
) -> None:
    with api_process(database_url, redis_url, RateLimits(), prefix) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            agent = await _agent_headers(client)
            agent_id = (await client.get("/agents", headers=AUTH)).json()["items"][0]["id"]
            body = {"rate_limits": {"reads": "3/hour burst 2"}}
            response = await client.put(f"/agents/{agent_id}/limits", json=body, headers=AUTH)
            assert response.status_code == 200, response.text
            assert response.json()["rate_limits"] == {"reads": "3/hour burst 2"}
            statuses = [(await client.get("/tasks", headers=agent)).status_code for _ in range(3)]
            admin = [(await client.get("/tasks", headers=AUTH)).status_code for _ in range(3)]
            wrong = {"rate_limits": {"reads": "fast"}}
            bad = await client.put(f"/agents/{agent_id}/limits", json=wrong, headers=AUTH)
    assert statuses == [200, 200, 429]
    assert admin == [200] * 3
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "rate_limits.reads"
