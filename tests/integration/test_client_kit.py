"""The subscriber kit (clients/python, ordinaut_client.kit) on a real Redis stream shaped as
the relay writes it: entries a crashed consumer was given but never acknowledged are delivered
first on restart, then new ones, in order, each once; a failing handler leaves its entry
pending. And publishing onto the ingest stream refuses what the consumer would dead-letter."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as redis

from ordinaut_client import IngestRefused
from ordinaut_client.events import RunDead, RunSucceeded
from ordinaut_client.ingest import dead_letter, entry_fields
from ordinaut_client.kit import OrdinautEvents
from tests.workers import eventually


@pytest.fixture
async def stream(redis_url: str) -> AsyncIterator[str]:
    name = f"test-{uuid.uuid4().hex}:events"
    yield name
    async with redis.Redis.from_url(redis_url) as client:
        await client.delete(name)


async def append(client: redis.Redis, stream: str, position: int, event: dict[str, object]) -> None:
    """An entry as services/channels/events.py writes it."""
    await client.xadd(
        stream,
        {
            "position": str(position),
            "stream": f"run-{event['run_id']}",
            "version": "1",
            "type": str(event["type"]),
            "data": json.dumps(event),
            "meta": "{}",
            "recorded_at": datetime.now(UTC).isoformat(),
        },
        id=f"{position}-0",
    )


async def _true_now(value: bool) -> bool:
    return value


def succeeded(run: int) -> dict[str, object]:
    return {"type": "run.succeeded", "run_id": f"r{run}", "attempt": 1}


async def test_a_restarted_consumer_gets_its_unacknowledged_entries_then_new_ones(
    redis_url: str, stream: str
) -> None:
    async with redis.Redis.from_url(redis_url) as client:
        await client.xgroup_create(stream, "billing", id="0", mkstream=True)
        for position in (1, 2, 3):
            await append(client, stream, position, succeeded(position))
        # A consumer that acknowledged 1, was given 2 and 3, and died.
        await client.xreadgroup("billing", "billing-1", {stream: ">"}, count=3)
        await client.xack(stream, "billing", "1-0")
        await append(client, stream, 4, succeeded(4))
        await append(
            client, stream, 5, {"type": "run.dead", "run_id": "r5", "attempt": 3, "error": "boom"}
        )

        received: list[str] = []
        dead: list[RunDead] = []
        events = OrdinautEvents(
            redis_url, group="billing", consumer="billing-1", stream=stream, polling_interval=100
        )

        @events.on
        async def on_succeeded(event: RunSucceeded) -> None:
            received.append(event.run_id)

        @events.on
        async def on_dead(event: RunDead) -> None:
            dead.append(event)

        await events.app.start()
        try:
            await eventually(lambda: _true_now(len(dead) == 1), within=30)
        finally:
            await events.app.stop()
        assert received == ["r2", "r3", "r4"]  # 1 was acknowledged before the crash
        assert dead[0].error == "boom"
        pending = await client.xpending(stream, "billing")
        assert pending["pending"] == 0  # everything handled was acknowledged


async def test_a_failing_handler_leaves_its_entry_pending(redis_url: str, stream: str) -> None:
    async with redis.Redis.from_url(redis_url) as client:
        events = OrdinautEvents(
            redis_url, group="g", consumer="g-1", stream=stream, start="0", polling_interval=100
        )
        calls: list[str] = []

        @events.on
        async def on_succeeded(event: RunSucceeded) -> None:
            calls.append(event.run_id)
            if event.run_id == "r1":
                raise RuntimeError("not now")

        await append(client, stream, 1, succeeded(1))
        await append(client, stream, 2, succeeded(2))
        await events.app.start()
        try:
            await eventually(lambda: _true_now(len(calls) == 2), within=30)
        finally:
            await events.app.stop()
        pending = await client.xpending_range(stream, "g", min="-", max="+", count=10)
        assert [p["message_id"] for p in pending] == [b"1-0"]


def test_ingest_entries_are_checked_as_the_consumer_checks_them() -> None:
    fields = entry_fields(
        "orders.placed", {"id": 7}, source="shop", occurred_at="2026-01-01T00:00:00+00:00"
    )
    assert fields == {
        "topic": "orders.placed",
        "payload": '{"id":7}',
        "source": "shop",
        "occurred_at": "2026-01-01T00:00:00+00:00",
    }
    for bad, field in [
        (lambda: entry_fields("a b", {}), "topic"),
        (lambda: entry_fields("t", [1]), "payload"),  # type: ignore[arg-type]
        (lambda: entry_fields("t", {}, occurred_at="2026-01-01T00:00:00"), "occurred_at"),
        (lambda: entry_fields("t", {}, idempotency_key=""), "idempotency_key"),
        (lambda: entry_fields("t", {"x": "\x00"}), "payload"),
        (lambda: entry_fields("t", {"x": [{"\x00": 1}]}), "payload"),
    ]:
        with pytest.raises(IngestRefused) as refused:
            bad()
        assert refused.value.field == field
    # A backslash before "u0000" is no NUL.
    assert entry_fields("t", {"path": "C:\\u0000"})["payload"] == '{"path":"C:\\\\u0000"}'


async def test_a_dead_lettered_entry_is_read_back_as_its_refusal(redis_url: str) -> None:
    dead = f"test-{uuid.uuid4().hex}:dead"
    async with redis.Redis.from_url(redis_url) as client:
        try:
            # as services/ingest/consumer.py dead-letters an entry
            await client.xadd(
                dead,
                {
                    "reason": "payload: 300000 bytes, over the limit of 262144",
                    "source_stream": "ordinaut:ingest",
                    "source_id": "7-0",
                    "topic": "t",
                },
            )
            refused = await dead_letter(client, "7-0", dead_stream=dead)
            assert refused is not None
            assert refused.field == "payload"
            assert await dead_letter(client, "8-0", dead_stream=dead) is None
        finally:
            await client.delete(dead)
