"""Issue 18, finding 1: setting an agent's limits must not lock the admin out of the agent."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.workers import AUTH, api_client


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(database_url, redis_url) as test_client:
        yield test_client


async def test_the_admin_keeps_control_of_an_agent_after_setting_its_limits(
    client: httpx.AsyncClient,
) -> None:
    body = {"name": "limited", "scopes": ["tasks:read"]}
    agent = (await client.post("/agents", headers=AUTH, json=body)).json()
    token = (await client.post(f"/agents/{agent['id']}/tokens", headers=AUTH, json={})).json()
    limits = await client.put(
        f"/agents/{agent['id']}/limits", headers=AUTH, json={"rate_limits": {"reads": "5/s"}}
    )
    assert limits.status_code == 200, limits.text

    patched = await client.patch(
        f"/agents/{agent['id']}", headers=AUTH, json={"scopes": ["tasks:read", "runs:read"]}
    )
    assert patched.status_code == 200, patched.text
    again = await client.put(f"/agents/{agent['id']}/limits", headers=AUTH, json={})
    assert again.status_code == 200, again.text
    revoked = await client.delete(f"/agents/{agent['id']}/tokens/{token['id']}", headers=AUTH)
    assert revoked.status_code == 204, revoked.text
    leaked = {"Authorization": f"Bearer {token['token']}"}
    assert (await client.get("/tasks", headers=leaked)).status_code == 401
