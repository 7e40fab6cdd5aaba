"""Helpers the fault tests share: API clients, polling, and reading back what ran."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import redis.asyncio as redis

from services.store.order import START, Cursor

ADMIN = "admin-token-for-fault-tests-0123456789"


@dataclass
class FaultResult:
    """What one fault test reports: a one-line ``summary`` and the figures behind it."""

    name: str
    command: str
    summary: str = ""
    figures: dict[str, Any] = field(default_factory=dict)


def api(port: int | None, token: str = ADMIN) -> httpx.AsyncClient:
    """A client of one `ordinaut api` process."""
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        timeout=30,
        headers={"Authorization": f"Bearer {token}"},
    )


async def eventually(check: Any, within: float, what: str, every: float = 0.25) -> None:
    """Poll the async ``check`` until it is truthy; fail with ``what`` after ``within`` s."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(every)


async def redis_answers(url: str) -> bool:
    """Whether the Redis at ``url`` answers a PING now."""
    client = redis.Redis.from_url(url, socket_timeout=1)
    try:
        return bool(await client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        await client.aclose()


async def register_tool(client: httpx.AsyncClient, address: str, endpoint: str) -> None:
    """An http tool taking and returning any object."""
    body = {
        "address": address,
        "transport": "http",
        "endpoint": endpoint,
        "input_schema": {"type": "object"},
        "output_schema": {"type": "object"},
        "timeout_seconds": 10,
    }
    response = await client.post("/tools", json=body)
    assert response.status_code == 201, response.text


def every_second(title: str, steps: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """A POST /tasks body firing every second (6-field cron)."""
    return {
        "title": title,
        "schedule_kind": "cron",
        "schedule_expr": "* * * * * *",
        "timezone": "UTC",
        "payload": {"pipeline": steps},
        **fields,
    }


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/tasks", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


@dataclass
class RunRecord:
    """One run as its events tell it."""

    run_id: str
    task_id: str
    status: str
    trigger: str
    scheduled_for: datetime | None
    event_id: str | None
    types: Counter[str] = field(default_factory=Counter)
    steps: Counter[str] = field(default_factory=Counter)  # step id -> run.step_succeeded count


_RUNS = """
SELECT r.run_id, r.task_id, r.status, r.trigger, r.scheduled_for,
       r.queued->'event'->>'event_id' AS event_id, e.type, e.data->>'step_id' AS step_id
FROM runs r JOIN events e ON e.stream = 'run-' || r.run_id
"""


async def runs(pool: asyncpg.Pool) -> dict[str, RunRecord]:
    """Every run with the count of each of its event types and of each step's success."""
    found: dict[str, RunRecord] = {}
    for row in await pool.fetch(_RUNS):
        run = found.get(row["run_id"])
        if run is None:
            run = found[row["run_id"]] = RunRecord(
                row["run_id"],
                row["task_id"],
                row["status"],
                row["trigger"],
                row["scheduled_for"],
                row["event_id"],
            )
        run.types[row["type"]] += 1
        if row["type"] == "run.step_succeeded":
            run.steps[row["step_id"]] += 1
    return found


def run_problems(found: dict[str, RunRecord]) -> dict[str, list[str]]:
    """What breaks "every run completes exactly once": by kind, the runs concerned."""
    problems: dict[str, list[str]] = defaultdict(list)
    for run in found.values():
        if run.status != "succeeded" or run.types["run.succeeded"] != 1:
            problems["not succeeded exactly once"].append(run.run_id)
        if any(n != 1 for n in run.steps.values()):
            problems["a step recorded twice"].append(run.run_id)
    occurrences = Counter(
        (r.task_id, r.scheduled_for) for r in found.values() if r.trigger == "schedule"
    )
    problems["an occurrence queued twice"] = [str(k) for k, n in occurrences.items() if n > 1]
    fired = Counter((r.task_id, r.event_id) for r in found.values() if r.trigger == "event")
    problems["an event fired a task twice"] = [str(k) for k, n in fired.items() if n > 1]
    return {kind: ids for kind, ids in problems.items() if ids}


async def drained(pool: asyncpg.Pool) -> bool:
    """Every run finished and no work is left."""
    unfinished = await pool.fetchval(
        "SELECT count(*) FROM runs WHERE status NOT IN ('succeeded', 'dead', 'canceled')"
    )
    return unfinished == 0 and await pool.fetchval("SELECT count(*) FROM due_work") == 0


async def db_now(pool: asyncpg.Pool) -> datetime:
    return await pool.fetchval("SELECT clock_timestamp()")  # type: ignore[no-any-return]


async def create_agent(client: httpx.AsyncClient, webhook_url: str) -> tuple[str, str, str]:
    """An agent whose webhook is ``webhook_url``: (id, token, webhook secret)."""
    body = {
        "name": "fault owner",
        "scopes": ["tasks:write", "tasks:read", "runs:read"],
        "webhook_url": webhook_url,
    }
    response = await client.post("/agents", json=body)
    assert response.status_code == 201, response.text
    agent = response.json()
    response = await client.post(f"/agents/{agent['id']}/tokens", json={})
    assert response.status_code == 201, response.text
    return agent["id"], response.json()["token"], agent["webhook_secret"]


async def stream_complete(client: redis.Redis, stream: str, pool: asyncpg.Pool) -> bool:
    """Whether the events stream's top is the log's last event in the log's order
    (``(txid, position)``, services/store/order.py)."""
    try:
        last: Any = await client.xrevrange(stream, count=1)
    except (redis.RedisError, OSError):
        return False
    top = Cursor.from_entry_id(last[0][0]) if last else START
    row = await pool.fetchrow(
        "SELECT txid::text::bigint AS txid, position FROM events"
        " ORDER BY txid DESC, position DESC LIMIT 1"
    )
    return top == (Cursor(row["txid"], row["position"]) if row else START)


async def stream_problems(positions: list[int], pool: asyncpg.Pool) -> tuple[int, int, bool]:
    """(stored events missing, entries twice, out of the log's order) of the stream against
    the log.

    Positions are not dense: a crashed PostgreSQL skips the sequence values it had cached,
    so the stream is compared with the positions the log really holds, and in the log's one
    order, ``(txid, position)``: positions alone need not grow along it.
    """
    rows = await pool.fetch("SELECT position FROM events ORDER BY txid, position")
    rank = {row["position"]: n for n, row in enumerate(rows)}
    seen = Counter(positions)
    ranks = [rank.get(position, -1) for position in positions]
    return (
        len(set(rank) - set(seen)),
        sum(n - 1 for n in seen.values() if n > 1) + len(set(seen) - set(rank)),
        ranks != sorted(ranks),
    )


_NOTIFIABLE = """
SELECT e.position FROM events e JOIN runs r ON e.stream = 'run-' || r.run_id
WHERE e.type = 'run.succeeded' AND r.owner = $1
"""
_DELIVERED = """
SELECT stream, recorded_at FROM events WHERE type = 'webhook.delivered' AND stream LIKE $1
"""


@dataclass
class Webhooks:
    """What the agent should have been sent, what was recorded, and what arrived."""

    expected: set[int]  # positions of its runs' run.succeeded
    delivered: dict[int, datetime]  # position -> when webhook.delivered was recorded
    records: Counter[int]  # position -> webhook.delivered records
    requests: Counter[int]  # position -> requests the receiver got
    after_success: list[int]  # positions requested again after their delivery was recorded

    @property
    def repeats(self) -> int:
        """Requests beyond the first for a delivery (a notifier died before recording it)."""
        return sum(n - 1 for n in self.requests.values() if n > 1)


async def webhooks(pool: asyncpg.Pool, receiver: Any, agent_id: str) -> Webhooks:
    """The agent's webhooks as the log and the receiver saw them."""
    expected = {r["position"] for r in await pool.fetch(_NOTIFIABLE, agent_id)}
    rows = await pool.fetch(_DELIVERED, f"webhook-{agent_id}-%")
    records = Counter(int(r["stream"].rsplit("-", 1)[1]) for r in rows)
    delivered = {int(r["stream"].rsplit("-", 1)[1]): r["recorded_at"] for r in rows}
    prefix = f"{agent_id}-"
    arrivals = [
        (int(d.body["delivery_id"].removeprefix(prefix)), d.wall)
        for d in receiver.received
        if d.verified
    ]
    requests = Counter(position for position, _ in arrivals)
    after = sorted(
        {p for p, wall in arrivals if p in delivered and wall > delivered[p].timestamp()}
    )
    return Webhooks(expected, delivered, records, requests, after)
