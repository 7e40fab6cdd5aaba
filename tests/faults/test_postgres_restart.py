"""PostgreSQL restarted under load, once with a fast shutdown and once crashing (immediate
shutdown, recovery from the WAL): every process reconnects by itself, no acknowledged command
is lost (clients retry refused ones with the same Idempotency-Key, and none is applied twice),
and runs resume, each once."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass, field

import asyncpg
import httpx
import pytest
import redis.asyncio as redis

from tests.faults.support import (
    FaultResult,
    api,
    create,
    db_now,
    drained,
    eventually,
    every_second,
    register_tool,
    run_problems,
    runs,
    stream_complete,
    stream_problems,
)
from tests.postgres_server import PostgresServer
from tests.processes import Fleet, ready, stop
from tests.relay_support import stream_positions
from tests.tools_servers.step_tool import StepTool

FAULT = "postgres-restart"
DOWN_SECONDS = 5
BETWEEN_SECONDS = 5
TASKS = 3
COMMAND_EVERY = 0.1
ENV = {"ORDINAUT_WORKER_POLL_SECONDS": "0.2", "ORDINAUT_WORKER_LEASE_SECONDS": "5"}


@dataclass
class Acknowledged:
    """Commands the API acknowledged (key -> what it answered) and how many tries they took."""

    events: dict[str, str] = field(default_factory=dict)  # key -> event id
    tasks: dict[str, str] = field(default_factory=dict)  # key -> task id
    refused: int = 0  # answers that were not 2xx (or no answer): tried again
    last_ack: float = 0.0


async def _send_until_acknowledged(client: httpx.AsyncClient, n: int, acks: Acknowledged) -> None:
    """One command, retried with its Idempotency-Key until acknowledged, as a client would."""
    key = f"fault-{n}-{uuid.uuid4().hex[:8]}"
    if n % 3:
        path, body = "/events", {"topic": "fault.tick", "payload": {"n": n}}
    else:
        pipeline = {"pipeline": [{"id": "a", "uses": "debug.echo"}]}
        path = "/tasks"
        body = {
            "title": f"later {n}",
            "schedule_kind": "cron",
            "schedule_expr": "0 0 1 1 *",
            "payload": pipeline,
        }
    while True:
        try:
            response = await client.post(path, json=body, headers={"Idempotency-Key": key})
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code in (201, 202):
            answer = response.json()
            (acks.events if path == "/events" else acks.tasks)[key] = answer["id"]
            acks.last_ack = time.monotonic()
            return
        acks.refused += 1
        await asyncio.sleep(0.2)


async def _commands(client: httpx.AsyncClient, acks: Acknowledged, stop: asyncio.Event) -> None:
    for n in itertools.count():
        await _send_until_acknowledged(client, n, acks)
        try:
            await asyncio.wait_for(stop.wait(), COMMAND_EVERY)
            return
        except TimeoutError:
            pass


async def _restart(server: PostgresServer, acks: Acknowledged, *, crash: bool) -> float:
    """Stop (or crash) the server, keep it down, start it; seconds until commands are
    acknowledged again."""
    server.stop(crash=crash)
    await asyncio.sleep(DOWN_SECONDS)
    await server.start()
    started = time.monotonic()
    while acks.last_ack <= started:
        assert time.monotonic() - started < 60, "no command acknowledged after the restart"
        await asyncio.sleep(0.05)
    return acks.last_ack - started


_LOST_EVENTS = """
SELECT k.key FROM unnest($1::text[], $2::text[]) AS k(key, id)
WHERE (SELECT count(*) FROM events e WHERE e.type = 'event.received'
       AND e.data->>'event_id' = k.id AND e.meta->>'idempotency_key' = k.key) <> 1
"""
_LOST_TASKS = """
SELECT k.key FROM unnest($1::text[], $2::text[]) AS k(key, id)
WHERE (SELECT count(*) FROM events e WHERE e.type = 'task.created'
       AND e.stream = 'task-' || k.id) <> 1
"""


@pytest.mark.timeout(300)
async def test_processes_reconnect_and_nothing_acknowledged_is_lost(
    fleet: Fleet,
    pool: asyncpg.Pool,
    owned_postgres: PostgresServer,
    redis_url: str,
    tool: tuple[StepTool, str],
    fault: FaultResult,
) -> None:
    _, base_url = tool
    api_process = await fleet.start("api")
    await asyncio.gather(
        fleet.start("timer"),
        fleet.start("worker", **ENV),
        fleet.start("worker", **ENV),
        fleet.start("relay"),
        fleet.start("notifier"),
    )
    acks, stop_commands = Acknowledged(), asyncio.Event()
    async with api(api_process.api_port) as client:
        await register_tool(client, "test.step", f"{base_url}/slow?seconds=0.5")
        steps = [{"id": "one", "uses": "test.step"}, {"id": "two", "uses": "test.step"}]
        for n in range(TASKS):
            await create(client, every_second(f"load {n}", steps))
        sender = asyncio.create_task(_commands(client, acks, stop_commands))
        await asyncio.sleep(BETWEEN_SECONDS)
        back_after = [await _restart(owned_postgres, acks, crash=False)]
        await asyncio.sleep(BETWEEN_SECONDS)
        back_after.append(await _restart(owned_postgres, acks, crash=True))
        restarted_at = await db_now(pool)
        await asyncio.sleep(BETWEEN_SECONDS)
        stop_commands.set()
        await sender
    alive_after = {f"{p.name}-{p.pid}": p.alive for p in fleet.all}
    for process in fleet.all:
        await ready(process, within=30)
    codes = await stop(fleet.by_kind["timer"] + fleet.by_kind["api"])
    await eventually(lambda: drained(pool), 60, "runs did not drain:\n" + fleet.tails())
    stream = fleet.env["ORDINAUT_EVENTS_STREAM"]
    client_r = redis.Redis.from_url(redis_url)
    try:
        await eventually(lambda: stream_complete(client_r, stream, pool), 30, "stream behind")
        positions = await stream_positions(client_r, stream)
    finally:
        await client_r.aclose()
    codes |= await stop([p for p in fleet.all if p.alive])

    lost = [
        r["key"]
        for r in await pool.fetch(_LOST_EVENTS, list(acks.events), list(acks.events.values()))
    ]
    lost += [
        r["key"] for r in await pool.fetch(_LOST_TASKS, list(acks.tasks), list(acks.tasks.values()))
    ]
    found = await runs(pool)
    problems = run_problems(found)
    after = await pool.fetchval(
        "SELECT count(*) FROM events WHERE type = 'run.succeeded' AND recorded_at > $1",
        restarted_at,
    )
    gaps, twice, disordered = await stream_problems(positions, pool)
    acknowledged = len(acks.events) + len(acks.tasks)
    fault.summary = (
        f"faults: {FAULT} 2 restarts (fast, crash; {DOWN_SECONDS} s down): processes"
        f" {sum(alive_after.values())}/{len(alive_after)} reconnected by themselves,"
        f" {acknowledged} commands acknowledged, {len(lost)} lost, {acks.refused} refused"
        f" tries retried, commands back {max(back_after):.1f} s after start, {len(found)} runs"
        f" ({after} succeeded after the crash), {len(problems)} run problems,"
        f" stream {gaps} missing / {twice} twice"
    )
    fault.figures = {
        "down_seconds": DOWN_SECONDS,
        "processes_alive": alive_after,
        "acknowledged": acknowledged,
        "lost": lost,
        "refused_tries": acks.refused,
        "commands_back_seconds": [round(s, 2) for s in back_after],
        "runs": len(found),
        "runs_succeeded_after_crash": after,
        "run_problems": problems,
        "stream_missing": gaps,
        "stream_twice": twice,
        "stream_out_of_order": disordered,
    }

    assert all(alive_after.values()), f"{alive_after}\n{fleet.tails()}"
    assert set(codes.values()) == {0}, f"{codes}\n{fleet.tails()}"
    assert lost == [], lost
    assert problems == {}, problems
    assert after > 0, "no run succeeded after the crash"
    assert (gaps, twice, disordered) == (0, 0, False)
