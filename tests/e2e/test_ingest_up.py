"""`ordinaut up` consumes `ordinaut:ingest`: an entry fires an event task, a bad one is dead."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

from tests.redis_server import RedisServer
from tests.workers import eventually


@pytest.mark.timeout(180)
async def test_up_turns_ingest_entries_into_runs_and_dead_letters_bad_ones(
    tmp_path: Path, own_redis: RedisServer, start_service: Any, database_url: str
) -> None:
    # own_redis comes first, so it is stopped last: start_service cleans up streams on it.
    env = {"ORDINAUT_DATABASE_URL": database_url, "ORDINAUT_REDIS_URL": own_redis.url}
    service = start_service(tmp_path / "data", env)
    await service.wait_ready()
    producer = redis.Redis.from_url(own_redis.url)
    try:
        async with service.client() as client:
            step = {"id": "say", "uses": "debug.echo", "with": {"n": "${event.payload.n}"}}
            body = {
                "title": "on build",
                "schedule_kind": "event",
                "schedule_expr": "build.*",
                "payload": {"pipeline": [step]},
            }
            task = (await client.post("/tasks", json=body)).json()
            await producer.xadd(
                "ordinaut:ingest", {"topic": "build.done", "payload": json.dumps({"n": 7})}
            )
            await producer.xadd("ordinaut:ingest", {"topic": "build.done", "payload": "[]"})

            async def succeeded() -> list[dict[str, Any]]:
                runs = (await client.get("/runs", params={"task_id": task["id"]})).json()
                return [r for r in runs["items"] if r["status"] == "succeeded"]

            (run,) = await eventually(succeeded, within=30)
            detail = (await client.get(f"/runs/{run['id']}")).json()
        assert detail["steps"][0]["output"] == {"n": 7}
        ((_, dead),) = await producer.xrange("ordinaut:dead")
        assert dead[b"reason"].startswith(b"payload: must be a JSON object")
    finally:
        await producer.aclose()
    assert service.stop() == 0
