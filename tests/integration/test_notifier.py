"""Webhooks: signed, delivered once despite failures, and a bad receiver delays no one else."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as redis

from domain.webhook_signing import SIGNATURE_HEADER, verify, webhook_secret
from services.notify.service import NOTIFIER_GROUP, NotifierConfig
from services.relay.service import RelayConfig
from services.store.order import Cursor
from tests.notify_support import (
    KEY,
    create_agent,
    delivery_records,
    finish_run,
    notifying,
    queue_run,
)
from tests.redis_server import RedisServer
from tests.relay_support import relaying, unique_stream
from tests.tools_servers.http_tool_server import serve
from tests.webhook_receiver import WebhookReceiver
from tests.workers import eventually


@pytest.fixture
async def stream(redis_url: str) -> AsyncIterator[str]:
    name = unique_stream()
    yield name
    async with redis.Redis.from_url(redis_url) as client:
        await client.delete(name)


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, str]]:
    app = WebhookReceiver()
    with serve(app, lifespan="off") as base_url:
        yield app, base_url


@pytest.fixture
async def relayed(database_url: str, redis_url: str, stream: str) -> AsyncIterator[None]:
    async with relaying(database_url, redis_url, RelayConfig(stream=stream, idle_seconds=0.5)):
        yield


def fast(stream: str, **changes: object) -> NotifierConfig:
    config = NotifierConfig(
        stream=stream,
        start_id="0",
        max_attempts=5,
        timeout_seconds=0.5,
        backoff_base_seconds=0.1,
        backoff_max_seconds=0.4,
        block_ms=200,
    )
    return replace(config, **changes)  # type: ignore[arg-type]


async def agent_at(pool: asyncpg.Pool, receiver: WebhookReceiver, url: str, **kw: object) -> str:
    agent_id = await create_agent(pool, url, **kw)  # type: ignore[arg-type]
    receiver.secrets[agent_id] = webhook_secret(KEY, agent_id)
    return agent_id


async def finished(pool: asyncpg.Pool, agent_id: str, position: int) -> list[str] | None:
    types = [t for t, _, _ in await delivery_records(pool, agent_id, position)]
    return types if types and types[-1] in ("webhook.delivered", "webhook.failed") else None


async def test_a_receiver_verifies_the_signature_of_the_one_delivery_it_gets(
    pool: asyncpg.Pool,
    redis_url: str,
    stream: str,
    relayed: None,
    receiver: tuple[WebhookReceiver, str],
) -> None:
    app, base = receiver
    agent = await agent_at(pool, app, f"{base}/ok")
    run_id = await queue_run(pool, agent)
    position = await finish_run(pool, run_id)
    async with notifying(pool, redis_url, fast(stream)):
        await eventually(lambda: finished(pool, agent, position))
        await asyncio.sleep(0.5)  # time for a (wrong) second delivery or a run.queued one

    (delivery,) = app.received
    assert delivery.verified
    assert delivery.body["type"] == "run.succeeded"
    assert delivery.body["position"] == position
    assert delivery.body["data"]["run_id"] == run_id
    assert delivery.headers["ordinaut-event-type"] == "run.succeeded"
    raw = delivery.headers[SIGNATURE_HEADER.lower()]
    assert raw.startswith("t=")
    assert verify(webhook_secret(KEY, agent), raw, delivery.raw, now=time.time())
    assert not verify(webhook_secret(KEY, "someone else"), raw, delivery.raw, now=time.time())
    assert not verify(webhook_secret(KEY, agent), raw, delivery.raw + b" ", now=time.time())
    records = await delivery_records(pool, agent, position)
    assert [t for t, _, _ in records] == ["webhook.attempted", "webhook.delivered"]
    assert records[0][1].status == 200


async def test_a_receiver_failing_three_times_gets_the_event_once(
    pool: asyncpg.Pool,
    redis_url: str,
    stream: str,
    relayed: None,
    receiver: tuple[WebhookReceiver, str],
) -> None:
    app, base = receiver
    agent = await agent_at(pool, app, f"{base}/flaky/3")
    position = await finish_run(pool, await queue_run(pool, agent), dead=True)
    async with notifying(pool, redis_url, fast(stream)):
        await eventually(lambda: finished(pool, agent, position))
        await asyncio.sleep(0.5)
    # Another group reading the whole stream finds the record and sends nothing again.
    async with notifying(pool, redis_url, fast(stream, group=f"{stream}:second")):
        await asyncio.sleep(1.0)

    assert app.per_delivery("/flaky/3") == {f"{agent}-{position}": 4}
    assert all(d.verified for d in app.received)
    records = await delivery_records(pool, agent, position)
    assert [t for t, _, _ in records] == ["webhook.attempted"] * 4 + ["webhook.delivered"]
    assert [e.status for t, e, _ in records[:4]] == [500, 500, 500, 200]


async def test_a_failing_receiver_is_recorded_as_failed_and_delays_no_one_else(
    pool: asyncpg.Pool,
    redis_url: str,
    stream: str,
    relayed: None,
    receiver: tuple[WebhookReceiver, str],
) -> None:
    app, base = receiver
    hanging = await agent_at(pool, app, f"{base}/hang")
    down = await agent_at(pool, app, f"{base}/down")
    healthy = await agent_at(pool, app, f"{base}/ok")
    bad = [await finish_run(pool, await queue_run(pool, agent)) for agent in (hanging, down)]
    bad += [await finish_run(pool, await queue_run(pool, hanging)) for _ in range(6)]
    good = await finish_run(pool, await queue_run(pool, healthy))
    async with notifying(pool, redis_url, fast(stream, max_attempts=3)):
        await eventually(lambda: finished(pool, healthy, good))
        pending = [p for p in bad[:2] if not await finished(pool, hanging, p)]
        assert pending, "the good delivery waited for the failing ones"
        owners = [hanging, down] + [hanging] * 6
        for agent, position in zip(owners, bad, strict=True):
            await eventually(lambda a=agent, p=position: finished(pool, a, p), within=30)

    for agent, position in zip(owners, bad, strict=True):
        records = await delivery_records(pool, agent, position)
        assert [t for t, _, _ in records] == ["webhook.attempted"] * 3 + ["webhook.failed"]
        assert records[-1][1].attempts == 3
    good_records = await delivery_records(pool, healthy, good)
    failures = [await delivery_records(pool, a, p) for a, p in zip(owners, bad, strict=True)]
    first_failure = min(records[-1][2] for records in failures)
    assert good_records[-1][2] < first_failure
    assert app.per_delivery("/ok") == {f"{healthy}-{good}": 1}
    assert set(app.per_delivery("/down").values()) == {3}


async def test_entries_a_dead_notifier_held_are_reclaimed_and_delivered(
    pool: asyncpg.Pool,
    redis_url: str,
    stream: str,
    relayed: None,
    receiver: tuple[WebhookReceiver, str],
) -> None:
    app, base = receiver
    agent = await agent_at(pool, app, f"{base}/ok")
    position = await finish_run(pool, await queue_run(pool, agent))
    config = fast(stream, reclaim_idle_seconds=0.6)
    async with redis.Redis.from_url(redis_url) as client:
        entry_id = await _entry_id(pool, position)
        await eventually(lambda: _holds(client, stream, entry_id))
        await client.xgroup_create(stream, config.group, id="0")
        # A notifier that read everything and died before acknowledging any of it.
        await client.xreadgroup(config.group, "dead-notifier", {stream: ">"})
        async with notifying(pool, redis_url, config):
            await eventually(lambda: finished(pool, agent, position))
        pending = await client.xpending(stream, config.group)
    assert app.per_delivery("/ok") == {f"{agent}-{position}": 1}
    assert pending["pending"] == 0


async def _entry_id(pool: asyncpg.Pool, position: int) -> str:
    """The Redis entry id the relay gives the event at ``position``: its cursor."""
    txid = await pool.fetchval("SELECT txid FROM events WHERE position = $1", position)
    return Cursor(int(txid), position).entry_id


async def _holds(client: redis.Redis, stream: str, entry_id: str) -> bool:
    return bool(await client.xrange(stream, min=entry_id, max=entry_id))


async def test_an_agent_chooses_its_event_types(
    pool: asyncpg.Pool,
    redis_url: str,
    stream: str,
    relayed: None,
    receiver: tuple[WebhookReceiver, str],
) -> None:
    app, base = receiver
    agent = await agent_at(pool, app, f"{base}/ok", notify_events=("run.queued",))
    run_id = await queue_run(pool, agent)
    queued = await pool.fetchval("SELECT max(position) FROM events")
    succeeded = await finish_run(pool, run_id)
    async with notifying(pool, redis_url, fast(stream)):
        await eventually(lambda: finished(pool, agent, queued))
        await asyncio.sleep(0.5)
    assert [d.body["type"] for d in app.received] == ["run.queued"]
    assert await delivery_records(pool, agent, succeeded) == []


async def test_ordinaut_notifier_runs_alone_and_stops_cleanly(
    database_url: str, redis_url: str, stream: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
    env |= {
        "ORDINAUT_DATABASE_URL": database_url,
        "ORDINAUT_REDIS_URL": redis_url,
        "ORDINAUT_WEBHOOK_KEY": KEY.decode(),
        "ORDINAUT_DATA_DIR": str(tmp_path),
    }
    with (tmp_path / "notifier.log").open("wb") as log:
        process = subprocess.Popen(  # noqa: ASYNC220 - returns at once; readiness is polled
            [sys.executable, "-m", "services.cli.main", "notifier", "--stream", stream],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        async with redis.Redis.from_url(redis_url) as client:
            await eventually(lambda: _has_group(client, stream), within=30)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in (tmp_path / "notifier.log").read_text()


async def _has_group(client: redis.Redis, stream: str) -> bool:
    try:
        groups = await client.xinfo_groups(stream)
    except redis.ResponseError:
        return False
    return any(g["name"] == NOTIFIER_GROUP.encode() for g in groups)


async def test_after_redis_loses_the_stream_delivery_goes_on_without_repeats(
    pool: asyncpg.Pool,
    redis_url: str,
    stream: str,
    relayed: None,
    receiver: tuple[WebhookReceiver, str],
) -> None:
    app, base = receiver
    agent = await agent_at(pool, app, f"{base}/ok")
    async with redis.Redis.from_url(redis_url) as client:
        old = await finish_run(pool, await queue_run(pool, agent))  # before the notifier began
        old_id = await _entry_id(pool, old)
        await eventually(lambda: _holds(client, stream, old_id))
        async with notifying(pool, redis_url, fast(stream, start_id="$")):
            await eventually(lambda: _has_group(client, stream))
            before = await finish_run(pool, await queue_run(pool, agent))
            await eventually(lambda: finished(pool, agent, before))
            await client.delete(stream)  # a flush: the group goes too; the relay refills
            before_id = await _entry_id(pool, before)
            await eventually(lambda: _holds(client, stream, before_id), within=20)
            after = await finish_run(pool, await queue_run(pool, agent))
            await eventually(lambda: finished(pool, agent, after), within=20)
            await asyncio.sleep(0.5)
    assert app.per_delivery("/ok") == {f"{agent}-{before}": 1, f"{agent}-{after}": 1}


async def test_a_webhook_to_a_refused_address_fails_at_once_without_connecting(
    pool: asyncpg.Pool, redis_url: str, stream: str, relayed: None
) -> None:
    agent = await create_agent(pool, "http://169.254.169.254/latest/meta-data")
    position = await finish_run(pool, await queue_run(pool, agent))
    async with notifying(pool, redis_url, fast(stream)):
        await eventually(lambda: finished(pool, agent, position))
    records = await delivery_records(pool, agent, position)
    assert [t for t, _, _ in records] == ["webhook.attempted", "webhook.failed"]
    assert "refused to connect" in records[0][1].error
    assert records[0][1].status is None


async def test_notifications_go_on_after_a_redis_outage_without_repeats(
    database_url: str,
    pool: asyncpg.Pool,
    own_redis: RedisServer,
    receiver: tuple[WebhookReceiver, str],
) -> None:
    app, base = receiver
    agent = await agent_at(pool, app, f"{base}/ok")
    stream = unique_stream()  # on the test's own server, which is thrown away
    relay = RelayConfig(stream=stream, idle_seconds=0.3, backoff_max_seconds=0.5)
    async with (
        relaying(database_url, own_redis.url, relay),
        notifying(pool, own_redis.url, fast(stream)),
    ):
        before = await finish_run(pool, await queue_run(pool, agent))
        await eventually(lambda: finished(pool, agent, before))
        own_redis.stop()
        during = await finish_run(pool, await queue_run(pool, agent))  # recorded, not relayed
        await asyncio.sleep(1.0)
        await own_redis.start()  # empty: the relay refills, the notifier rejoins
        await eventually(lambda: finished(pool, agent, during), within=30)
        await asyncio.sleep(0.5)
    assert app.per_delivery("/ok") == {f"{agent}-{before}": 1, f"{agent}-{during}": 1}
