"""Helpers for tests that run pipelines: the API in a thread, workers, and polling for results."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

import asyncpg
import httpx
import msgspec
import redis.asyncio as redis

from projections.registry import inline_projections
from services.api.app import ApiConfig, create_app
from services.runtime.admin_token import token_hash
from services.store.pool import open_pool
from services.worker.service import Worker, WorkerConfig
from tests.tools_servers.http_tool_server import serve

ADMIN = "admin-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
FAST = WorkerConfig(concurrency=8, lease_seconds=2.0, poll_seconds=0.2, grace_seconds=2.0)
FINISHED = ("succeeded", "dead", "canceled", "deduplicated")


def serve_in_thread(app: Any, *, lifespan: Literal["auto", "on", "off"] = "on") -> Any:
    """Serve an ASGI app with uvicorn on a free 127.0.0.1 port in a thread; yields its URL."""
    return serve(app, lifespan=lifespan)


@contextlib.asynccontextmanager
async def api_client(
    database_url: str,
    redis_url: str,
    *,
    secret_key: bytes | None = None,
    shell_allow: tuple[str, ...] = (),
    python_allow: tuple[str, ...] = (),
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the API, served by uvicorn in a thread, as admin.

    Not litestar's AsyncTestClient: it runs each request to completion while blocking this
    event loop, so a command waiting for the append lock held by a worker in this loop would
    wait forever.
    """
    config = ApiConfig(
        database_url,
        redis_url,
        token_hash(ADMIN),
        secret_key=secret_key,
        shell_allow=shell_allow,
        python_allow=python_allow,
    )
    app = create_app(config)
    # Idle connections are dropped well before uvicorn closes them (5 s): a request sent on one
    # the server is closing fails with "Server disconnected", as one poll did on a starved CI.
    limits = httpx.Limits(keepalive_expiry=2.0)
    with serve_in_thread(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
            yield client


@contextlib.asynccontextmanager
async def running_workers(
    database_url: str, redis_url: str | None, count: int = 1, config: WorkerConfig = FAST
) -> AsyncIterator[list[Worker]]:
    """``count`` workers in this process, each with its own pool, stopped (drained) after."""
    stop = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        workers = []
        for _ in range(count):
            pool = await stack.enter_async_context(open_pool(database_url, size=6, warm=1))
            client = redis.Redis.from_url(redis_url, socket_timeout=5) if redis_url else None
            if client is not None:
                stack.push_async_callback(client.aclose)
            workers.append(Worker(pool, inline_projections(), config, redis_client=client))
        tasks = [asyncio.create_task(w.run(stop)) for w in workers]
        try:
            yield workers
        finally:
            stop.set()
            await asyncio.gather(*tasks)


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 15.0) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def get_run(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    """GET /runs/{run_id}; a read, so sent again if its connection drops before an answer
    (two clean-clone CI runs on a starved machine lost one of 41 concurrent polls that way)."""
    for _ in range(2):
        with contextlib.suppress(httpx.RemoteProtocolError):
            response = await client.get(f"/runs/{run_id}", headers=AUTH)
            break
    else:
        response = await client.get(f"/runs/{run_id}", headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def run_in(
    client: httpx.AsyncClient, run_id: str, statuses: tuple[str, ...], within: float = 15.0
) -> dict[str, Any]:
    """The run once its status is one of ``statuses``."""

    async def reached() -> dict[str, Any] | None:
        run = await get_run(client, run_id)
        return run if run["status"] in statuses else None

    return await eventually(reached, within)  # type: ignore[no-any-return]


async def run_to_end(
    client: httpx.AsyncClient, run_id: str, within: float = 15.0
) -> dict[str, Any]:
    """The run once it finished, whichever way."""
    return await run_in(client, run_id, FINISHED, within)


async def create_task(
    client: httpx.AsyncClient, pipeline: list[dict[str, Any]], **fields: Any
) -> dict[str, Any]:
    """A task that never fires by itself (run it with ``run_now``)."""
    body = {
        "title": "t",
        "schedule_kind": "cron",
        "schedule_expr": "0 0 1 1 *",
        "payload": {"pipeline": pipeline, "params": {"n": 3, "who": "Ana"}},
        **fields,
    }
    response = await client.post("/tasks", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def run_now(client: httpx.AsyncClient, task_id: str) -> str:
    """Queue a run of the task; its id."""
    response = await client.post(f"/tasks/{task_id}/run_now", headers=AUTH)
    assert response.status_code == 202, response.text
    return str(response.json()["run_id"])


async def register_tool(client: httpx.AsyncClient, address: str, endpoint: str) -> None:
    """Register an http tool taking and returning any object."""
    body = {
        "address": address,
        "transport": "http",
        "endpoint": endpoint,
        "input_schema": {"type": "object"},
        "output_schema": {"type": "object"},
        "timeout_seconds": 10,
    }
    response = await client.post("/tools", json=body, headers=AUTH)
    assert response.status_code == 201, response.text


async def run_events(pool: asyncpg.Pool, run_id: str) -> list[dict[str, Any]]:
    """The run's events in order, each ``{"type", "at", **data}``."""
    rows = await pool.fetch(
        "SELECT type, data::text AS data, recorded_at FROM events WHERE stream = $1"
        " ORDER BY version",
        f"run-{run_id}",
    )
    return [
        {"type": r["type"], "at": r["recorded_at"], **msgspec.json.decode(r["data"])} for r in rows
    ]


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The events of one type."""
    return [event for event in events if event["type"] == kind]
