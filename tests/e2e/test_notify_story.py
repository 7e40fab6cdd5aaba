"""`ordinaut up` relays its log and calls agents' webhooks: a run's end reaches its owner,
signed with the secret the admin was shown."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as redis

from tests.e2e.test_agent_story import ok
from tests.relay_support import unique_stream
from tests.tools_servers.http_tool_server import serve
from tests.webhook_receiver import WebhookReceiver

PIPELINE = [{"id": "hello", "uses": "debug.echo", "with": {"text": "hi"}}]


@pytest.mark.timeout(180)
async def test_a_finished_run_reaches_its_owners_webhook_and_the_events_stream(
    tmp_path: Path, start_service: Any, database_url: str, redis_url: str
) -> None:
    stream = unique_stream()  # removed by start_service afterwards
    env = {
        "ORDINAUT_DATABASE_URL": database_url,
        "ORDINAUT_REDIS_URL": redis_url,
        "ORDINAUT_EVENTS_STREAM": stream,
    }
    service = start_service(tmp_path / "data", env)
    receiver = WebhookReceiver()
    with serve(receiver, lifespan="off") as hooks:
        await service.wait_ready()
        async with service.client() as admin:
            body = {
                "name": "owner",
                "scopes": ["tasks:write", "tasks:read", "runs:read"],
                "webhook_url": f"{hooks}/ok",
            }
            agent = await ok(await admin.post("/agents", json=body), 201)
            token = await ok(await admin.post(f"/agents/{agent['id']}/tokens", json={}), 201)
        receiver.secrets[agent["id"]] = agent["webhook_secret"]
        headers = {"Authorization": f"Bearer {token['token']}"}
        async with httpx.AsyncClient(base_url=service.base_url, headers=headers) as api:
            task = {
                "title": "t",
                "schedule_kind": "cron",
                "schedule_expr": "0 0 1 1 *",
                "payload": {"pipeline": PIPELINE},
            }
            created = await ok(await api.post("/tasks", json=task), 201)
            run = await ok(await api.post(f"/tasks/{created['id']}/run_now"), 202)
            for _ in range(300):
                if receiver.received:
                    break
                await asyncio.sleep(0.1)
            history = await ok(await api.get(f"/runs/{run['run_id']}/history"))

    (delivery,) = receiver.received
    assert delivery.verified
    assert delivery.body["type"] == "run.succeeded"
    assert delivery.body["data"]["run_id"] == run["run_id"]
    assert history["items"][-1]["type"] == "run.succeeded"
    async with redis.Redis.from_url(redis_url) as client:
        last: Any = await client.xrevrange(stream, count=1)
        top = int(last[0][0].split(b"-")[0])
    assert top >= history["items"][-1]["position"]
