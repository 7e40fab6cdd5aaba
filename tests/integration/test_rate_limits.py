"""API rate limits: per agent and route group, shared by API processes through Redis."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
import redis.asyncio as redis
from structlog.testing import capture_logs

from domain.rate_limits import MAX_BURST, MAX_RATE, MIN_RATE, RateLimit, RateLimits
from services.api.app import ApiConfig, create_app
from services.api.rate_limit import RateLimiter
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


@pytest.mark.parametrize(
    "limit",
    [
        "1/s burst 99999999999999999999",
        "1/s burst 1000001",
        "2000000/s",
        "0.01/hour",  # one every 100 hours: below one a day
    ],
)
async def test_absurd_rates_and_bursts_are_refused_naming_the_group(
    database_url: str, redis_url: str, prefix: str, limit: str
) -> None:
    with api_process(database_url, redis_url, RateLimits(), prefix) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            await _agent_headers(client)
            agent_id = (await client.get("/agents", headers=AUTH)).json()["items"][0]["id"]
            body = {"rate_limits": {"commands": limit}}
            refused = await client.put(f"/agents/{agent_id}/limits", json=body, headers=AUTH)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "rate_limits.commands"


async def test_the_widest_limits_allowed_are_enforced_by_redis(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    limiter = RateLimiter(client, RateLimits(), prefix=prefix)
    try:
        for limit in (
            RateLimit(MIN_RATE, MAX_BURST),  # the longest-lived bucket: 1e6 days to refill
            RateLimit(MAX_RATE, MAX_BURST),
            RateLimit(MIN_RATE, 1),
        ):
            with capture_logs() as logs:
                first = await limiter.wait_needed("agent", "commands", limit)
                second = await limiter.wait_needed("agent", "commands", limit)
            assert logs == []
            assert first is None
            assert (second is None) == (limit.burst > 1)
            ttl_ms = await client.pttl(f"{prefix}commands:agent")
            assert 0 < ttl_ms <= limit.refill_seconds * 1000 + 1000
            await client.delete(f"{prefix}commands:agent")
    finally:
        await client.aclose()


async def test_a_script_redis_refuses_is_logged_as_such_and_not_as_an_outage(
    redis_url: str, prefix: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    limiter = RateLimiter(client, TIGHT, prefix=prefix)
    try:
        await client.set(f"{prefix}reads:broken", "not a bucket")  # WRONGTYPE for the script
        with capture_logs() as logs:
            assert await limiter.wait_needed("broken", "reads") is None  # fails open
            assert await limiter.wait_needed("broken", "reads") is None
        assert [entry["event"] for entry in logs] == [
            "rate limit not enforced: Redis refused the rate-limit script"
        ]
        assert "WRONGTYPE" in logs[0]["reason"]
        # Redis itself is fine: other buckets are still enforced, with no quiet spell.
        waits = [await limiter.wait_needed("other", "reads") for _ in range(5)]
        assert waits[:4] == [None] * 4
        assert waits[4] is not None
    finally:
        await client.aclose()


async def test_an_agent_limit_stored_before_the_bounds_gives_way_to_the_default(
    database_url: str, redis_url: str, prefix: str, pool: asyncpg.Pool
) -> None:
    with api_process(database_url, redis_url, TIGHT, prefix) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            agent = await _agent_headers(client)
            agent_id = (await client.get("/agents", headers=AUTH)).json()["items"][0]["id"]
            ok = {"rate_limits": {"reads": "1000/s"}}
            assert (
                await client.put(f"/agents/{agent_id}/limits", json=ok, headers=AUTH)
            ).status_code == 200
            # As an earlier release accepted it: a burst no bucket can hold.
            await pool.execute(
                "UPDATE agent_limits SET rate_limits = $2::jsonb WHERE agent_id = $1",
                agent_id,
                '{"reads": "1/s burst 99999999999999999999"}',
            )
            statuses = [(await client.get("/tasks", headers=agent)).status_code for _ in range(6)]
    assert statuses == [200] * 4 + [429] * 2  # TIGHT's reads: a burst of 4
