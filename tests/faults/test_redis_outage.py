"""Redis stopped for 60 s under load (and back empty, as after a crash without persistence):
every command is accepted throughout, runs go on (workers poll PostgreSQL), none twice, and
afterwards the events stream holds the whole log once, in order, and every webhook arrives."""

from __future__ import annotations

import asyncio
import itertools
import time

import asyncpg
import httpx
import pytest
import redis.asyncio as redis

from tests.faults.support import (
    FaultResult,
    api,
    create,
    create_agent,
    db_now,
    drained,
    eventually,
    every_second,
    run_problems,
    runs,
    stream_complete,
    stream_problems,
    webhooks,
)
from tests.processes import Fleet, stop
from tests.redis_server import RedisServer
from tests.relay_support import stream_positions
from tests.webhook_receiver import WebhookReceiver

FAULT = "redis-outage"
OUTAGE_SECONDS = 60
TASKS = 3
COMMAND_EVERY = 0.2
ENV = {"ORDINAUT_WORKER_POLL_SECONDS": "0.2", "ORDINAUT_WORKER_LEASE_SECONDS": "5"}
ECHO = [
    {"id": "one", "uses": "debug.echo", "with": {"run": "${run.id}"}},
    {"id": "two", "uses": "debug.echo", "with": {"after": "${steps.one}"}},
]


_SUCCEEDED_SINCE = "SELECT count(*) FROM events WHERE type = 'run.succeeded' AND recorded_at > $1"


class Commands:
    """Sends a command every COMMAND_EVERY s (an external event, then a new task, in turn)
    and counts the answers, by phase."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client, self.phase = client, "before"
        self.answers: dict[str, list[int]] = {"before": [], "outage": [], "after": []}

    async def run(self, stop: asyncio.Event) -> None:
        for n in itertools.count():
            if n % 2:
                body = {
                    "title": f"later {n}",
                    "schedule_kind": "cron",
                    "schedule_expr": "0 0 1 1 *",
                    "payload": {"pipeline": ECHO},
                }
                response = await self.client.post("/tasks", json=body)
            else:
                response = await self.client.post(
                    "/events", json={"topic": "fault.tick", "payload": {"n": n}}
                )
            self.answers[self.phase].append(response.status_code)
            try:
                await asyncio.wait_for(stop.wait(), COMMAND_EVERY)
                return
            except TimeoutError:
                pass

    def refused(self) -> dict[str, int]:
        return {phase: sum(s >= 300 for s in codes) for phase, codes in self.answers.items()}


@pytest.mark.timeout(300)
async def test_commands_and_runs_go_on_while_redis_is_stopped(
    fleet: Fleet,
    pool: asyncpg.Pool,
    own_redis: RedisServer,
    receiver: tuple[WebhookReceiver, str],
    fault: FaultResult,
) -> None:
    hooks_server, hooks = receiver
    api_process = await fleet.start("api")
    await asyncio.gather(
        fleet.start("timer"),
        fleet.start("worker", **ENV),
        fleet.start("worker", **ENV),
        fleet.start("relay"),
        fleet.start("notifier"),
    )
    async with api(api_process.api_port) as admin:
        agent_id, token, secret = await create_agent(admin, f"{hooks}/ok")
        hooks_server.secrets[agent_id] = secret
        async with api(api_process.api_port, token) as owner:
            for n in range(TASKS):
                await create(owner, every_second(f"load {n}", ECHO))
            event_task = {
                "title": "on tick",
                "schedule_kind": "event",
                "schedule_expr": "fault.*",
                "payload": {"pipeline": ECHO},
            }
            await create(owner, event_task)
        commands, stop_commands = Commands(admin), asyncio.Event()
        sender = asyncio.create_task(commands.run(stop_commands))
        await asyncio.sleep(3)
        commands.phase = "outage"
        own_redis.stop()
        stopped_at = await db_now(pool)
        await asyncio.sleep(OUTAGE_SECONDS)
        succeeded_during = await pool.fetchval(_SUCCEEDED_SINCE, stopped_at)
        await own_redis.start()
        restarted = time.monotonic()
        commands.phase = "after"
        client = redis.Redis.from_url(own_redis.url)
        stream = fleet.env["ORDINAUT_EVENTS_STREAM"]
        try:
            await eventually(lambda: stream_complete(client, stream, pool), 60, "no catch-up")
            caught_up = time.monotonic() - restarted
            await asyncio.sleep(3)  # runs and webhooks after the outage too
            stop_commands.set()
            await sender
            codes = await stop(fleet.by_kind["timer"] + fleet.by_kind["api"])
            await eventually(lambda: drained(pool), 60, "runs did not drain:\n" + fleet.tails())
            await eventually(
                lambda: _all_delivered(pool, hooks_server, agent_id),
                60,
                "webhooks were not all delivered:\n" + fleet.tails(),
            )
            await eventually(lambda: stream_complete(client, stream, pool), 30, "stream behind")
            codes |= await stop([p for p in fleet.all if p.alive])
            positions = await stream_positions(client, stream)
        finally:
            await client.aclose()

    last = await pool.fetchval("SELECT max(position) FROM events")
    gaps, twice, disordered = await stream_problems(positions, pool)
    found = await runs(pool)
    problems = run_problems(found)
    hooks_seen = await webhooks(pool, hooks_server, agent_id)
    refused = commands.refused()
    sent = {phase: len(codes) for phase, codes in commands.answers.items()}
    accepted = sum(sent.values()) - sum(refused.values())
    duplicated = twice + sum(len(v) for k, v in problems.items() if "twice" in k)
    fault.summary = (
        f"faults: {FAULT} {OUTAGE_SECONDS} s: {accepted}/{sum(sent.values())} commands accepted"
        f" ({sent['outage']} during the outage), {len(found)} runs ({succeeded_during} succeeded"
        f" during the outage), {len(problems)} problems, {duplicated} duplicated,"
        f" stream {len(positions)}/{last} events with {gaps} missing, caught up"
        f" {caught_up:.1f} s after restart,"
        f" {len(hooks_seen.delivered)}/{len(hooks_seen.expected)} webhooks delivered"
        f" ({hooks_seen.repeats} repeated)"
    )
    fault.figures = {
        "outage_seconds": OUTAGE_SECONDS,
        "commands": sent,
        "refused": refused,
        "runs": len(found),
        "runs_succeeded_during_outage": succeeded_during,
        "run_problems": problems,
        "duplicated": duplicated,
        "stream_events": len(positions),
        "log_events": last,
        "stream_missing": gaps,
        "stream_twice": twice,
        "stream_out_of_order": disordered,
        "caught_up_seconds": round(caught_up, 2),
        "webhooks_expected": len(hooks_seen.expected),
        "webhooks_delivered": len(hooks_seen.delivered),
        "webhook_repeats": hooks_seen.repeats,
    }

    assert set(codes.values()) == {0}, f"{codes}\n{fleet.tails()}"
    assert refused == {"before": 0, "outage": 0, "after": 0}, commands.answers
    assert sent["outage"] >= OUTAGE_SECONDS / COMMAND_EVERY / 4, sent
    assert problems == {}, problems
    assert (gaps, twice, disordered) == (0, 0, False)
    assert hooks_seen.expected == set(hooks_seen.delivered), "webhooks missing"
    assert set(hooks_seen.records.values()) == {1}
    assert hooks_seen.repeats == 0, hooks_seen.requests
    assert succeeded_during > 0, "no run ran while Redis was stopped"


async def _all_delivered(pool: asyncpg.Pool, receiver: WebhookReceiver, agent_id: str) -> bool:
    seen = await webhooks(pool, receiver, agent_id)
    return bool(seen.expected) and seen.expected <= set(seen.delivered)
