"""Every guarded route refuses missing, wrong, revoked or under-scoped tokens, writing nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from domain.agents import SCOPES
from services.api.app import ApiConfig, create_app
from services.api.auth import required_scope
from services.application.principal import ADMIN_SCOPE
from services.runtime.admin_token import token_hash

ADMIN = {"Authorization": "Bearer admin-token-for-tests-0123456789"}
_PARAM = re.compile(r"\{[^}]+\}")


def guarded_routes(app: Litestar) -> list[tuple[str, str, str]]:
    """(method, path with ids filled in, required scope) for every guarded route."""
    found = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            scope = required_scope(handler)
            for method in sorted(getattr(handler, "http_methods", ())):
                if scope is not None and method not in ("HEAD", "OPTIONS"):
                    path = _PARAM.sub("00000000-0000-4000-8000-000000000000", route.path)
                    found.append((method, path, scope))
    return found


@pytest.fixture
async def app_client(
    database_url: str, redis_url: str
) -> AsyncIterator[tuple[Litestar, AsyncTestClient[Any]]]:
    # Every route gets two bad tokens from one address: the failed-authentication limit (checked
    # in test_auth_failures) would answer 429 where this test checks each route's 401.
    admin = token_hash(ADMIN["Authorization"][7:])
    app = create_app(ApiConfig(database_url, redis_url, admin, auth_failure_limit=None))
    async with AsyncTestClient(app) as client:
        yield app, client


async def agent_token(
    client: AsyncTestClient[Any], name: str, scopes: list[str]
) -> tuple[str, str, str]:
    agent = (
        await client.post("/agents", json={"name": name, "scopes": scopes}, headers=ADMIN)
    ).json()
    token = (await client.post(f"/agents/{agent['id']}/tokens", json={}, headers=ADMIN)).json()
    return agent["id"], token["id"], token["token"]


async def test_every_route_refuses_bad_credentials_and_writes_nothing(
    app_client: tuple[Litestar, AsyncTestClient[Any]], pool: asyncpg.Pool
) -> None:
    app, client = app_client
    routes = guarded_routes(app)
    assert len(routes) >= 15, routes
    grantable = sorted(SCOPES - {ADMIN_SCOPE})
    lacking = {
        s: (await agent_token(client, f"without {s}", [g for g in grantable if g != s]))[2]
        for s in grantable
    }
    agent_id, token_id, revoked = await agent_token(client, "revoked", grantable)
    await client.delete(f"/agents/{agent_id}/tokens/{token_id}", headers=ADMIN)
    before = await pool.fetchval("SELECT count(*) FROM events")

    failures = []
    for method, path, scope in routes:
        cases = [
            ("none", {}, 401),
            ("wrong", {"Authorization": "Bearer not-a-token"}, 401),
            ("revoked", {"Authorization": f"Bearer {revoked}"}, 401),
        ]
        no_scope = lacking.get(scope)
        cases.append(
            (
                "no scope",
                {"Authorization": f"Bearer {no_scope}"}
                if no_scope
                else {"Authorization": f"Bearer {lacking[grantable[0]]}"},
                403,
            )
        )
        for name, headers, expected in cases:
            response = await client.request(method, path, headers=headers, json={})
            if response.status_code != expected:
                failures.append((method, path, name, response.status_code))
            elif response.headers["content-type"] != "application/problem+json":
                failures.append((method, path, name, "not problem+json"))
    assert failures == []
    assert await pool.fetchval("SELECT count(*) FROM events") == before
