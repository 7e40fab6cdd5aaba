"""The relay (the leading one each time) and notifiers SIGKILLed under load, again and again:
the events stream holds every stored event once, in order (no gap, no duplicate), and no
webhook is sent again once its delivery was recorded."""

from __future__ import annotations

import asyncio
import random
import time

import asyncpg
import psutil
import pytest
import redis.asyncio as redis

from tests.faults.support import (
    FaultResult,
    api,
    create,
    create_agent,
    drained,
    eventually,
    every_second,
    stream_complete,
    stream_problems,
    webhooks,
)
from tests.processes import Fleet, Process, kill, stop
from tests.redis_server import RedisServer
from tests.relay_support import stream_positions
from tests.webhook_receiver import WebhookReceiver

FAULT = "relay-notifier-kill"
KILLS = 6  # of each
KILL_EVERY = 2.0  # seconds between kills, relay and notifier in turn
TASKS = 4
RECLAIM_SECONDS = 3
ECHO = [{"id": "one", "uses": "debug.echo", "with": {"run": "${run.id}"}}]
NOTIFIER_ENV = {"ORDINAUT_NOTIFIER_RECLAIM_SECONDS": str(RECLAIM_SECONDS)}

# The relay that leads holds this advisory lock (services/relay/service.py) on its connection.
_LEADER_PORT = """
SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a USING (pid)
WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 1919250540
"""


async def _leading_relay(fleet: Fleet, pool: asyncpg.Pool) -> Process | None:
    """The relay process whose connection holds the leader's lock."""
    port = await pool.fetchval(_LEADER_PORT)
    for relay in fleet.by_kind["relay"]:
        if not relay.alive:
            continue
        try:
            connections = psutil.Process(relay.pid).net_connections(kind="tcp")
        except psutil.Error:
            continue
        if any(c.laddr and c.laddr.port == port for c in connections):
            return relay
    return None


@pytest.mark.timeout(300)
async def test_killing_relays_and_notifiers_leaves_no_gap_and_no_repeat(
    fleet: Fleet,
    pool: asyncpg.Pool,
    own_redis: RedisServer,
    receiver: tuple[WebhookReceiver, str],
    fault: FaultResult,
) -> None:
    hooks_server, hooks = receiver
    api_process = await fleet.start("api")
    # Three of each: a kill waits for two to be alive, so a replacement has time to start.
    await asyncio.gather(
        fleet.start("timer"),
        fleet.start("worker"),
        *(fleet.start("relay") for _ in range(3)),
        *(fleet.start("notifier", **NOTIFIER_ENV) for _ in range(3)),
    )
    async with api(api_process.api_port) as admin:
        agent_id, token, secret = await create_agent(admin, f"{hooks}/ok")
        hooks_server.secrets[agent_id] = secret
        async with api(api_process.api_port, token) as owner:
            for n in range(TASKS):
                await create(owner, every_second(f"load {n}", ECHO))

    seed = random.randrange(2**32)
    rng, leaders_killed = random.Random(seed), 0
    starting: set[asyncio.Task[Process]] = set()
    began = time.monotonic()
    for n in range(2 * KILLS):
        await asyncio.sleep(KILL_EVERY)
        kind = "relay" if n % 2 == 0 else "notifier"
        starting = await _until_two_alive(fleet, kind, starting)
        if kind == "relay":
            victim = await _leading_relay(fleet, pool)
            leaders_killed += victim is not None
            victim = victim or next(r for r in fleet.by_kind["relay"] if r.alive)
        else:
            victim = rng.choice([p for p in fleet.by_kind["notifier"] if p.alive])
        await kill(victim)
        env = NOTIFIER_ENV if kind == "notifier" else {}
        starting.add(asyncio.create_task(fleet.start(kind, **env)))  # replacements start slowly
    await asyncio.gather(*starting)
    await asyncio.sleep(KILL_EVERY)
    codes = await stop(fleet.by_kind["timer"] + fleet.by_kind["api"])
    await eventually(lambda: drained(pool), 60, "runs did not drain:\n" + fleet.tails())
    stream = fleet.env["ORDINAUT_EVENTS_STREAM"]
    client = redis.Redis.from_url(own_redis.url)
    try:
        await eventually(lambda: stream_complete(client, stream, pool), 60, "stream behind")
        await eventually(
            lambda: _all_delivered(pool, hooks_server, agent_id),
            60,
            "webhooks were not all delivered:\n" + fleet.tails(),
        )
        codes |= await stop([p for p in fleet.all if p.alive])
        positions = await stream_positions(client, stream)
    finally:
        await client.aclose()

    missing, twice, disordered = await stream_problems(positions, pool)
    seen = await webhooks(pool, hooks_server, agent_id)
    recorded_twice = sum(n - 1 for n in seen.records.values() if n > 1)
    fault.summary = (
        f"faults: {FAULT} {KILLS} relay ({leaders_killed} leading) + {KILLS} notifier kills:"
        f" stream {len(positions)} events, {missing} missing, {twice} duplicated,"
        f" {'out of order' if disordered else 'in order'};"
        f" {len(seen.delivered)}/{len(seen.expected)} webhooks delivered,"
        f" {len(seen.after_success)} sent again after success"
        f" ({seen.repeats} re-sent after a kill before their success was recorded; seed {seed})"
    )
    fault.figures = {
        "relay_kills": KILLS,
        "leading_relay_kills": leaders_killed,
        "notifier_kills": KILLS,
        "stream_events": len(positions),
        "stream_missing": missing,
        "stream_twice": twice,
        "stream_out_of_order": disordered,
        "webhooks_expected": len(seen.expected),
        "webhooks_delivered": len(seen.delivered),
        "recorded_twice": recorded_twice,
        "sent_after_success": len(seen.after_success),
        "resent_before_record": seen.repeats,
        "seed": seed,
        "duration_seconds": round(time.monotonic() - began, 1),
    }

    assert set(codes.values()) == {0}, f"{codes}\n{fleet.tails()}"
    assert (missing, twice, disordered) == (0, 0, False)
    assert leaders_killed >= KILLS // 2, "the leading relay was rarely the one killed"
    assert seen.expected == set(seen.delivered), "webhooks missing"
    assert recorded_twice == 0
    assert seen.after_success == [], seen.after_success[:5]


async def _until_two_alive(
    fleet: Fleet, kind: str, starting: set[asyncio.Task[Process]]
) -> set[asyncio.Task[Process]]:
    """Wait for replacements until two processes of ``kind`` are alive; the ones still
    starting."""
    while sum(p.alive for p in fleet.by_kind[kind]) < 2:
        _, starting = await asyncio.wait(starting, return_when=asyncio.FIRST_COMPLETED)
    return starting


async def _all_delivered(pool: asyncpg.Pool, receiver: WebhookReceiver, agent_id: str) -> bool:
    seen = await webhooks(pool, receiver, agent_id)
    return bool(seen.expected) and seen.expected <= set(seen.delivered)
