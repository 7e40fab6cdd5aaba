"""Runs within their work limits (issue 18, finding 3): a template over the whole context,
repeated, neither recurses nor grows without bound, and a limit passed fails the step naming
its setting."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from domain.limits import WorkLimits
from tests.workers import (
    AUTH,
    FAST,
    api_client,
    create_task,
    of_type,
    run_events,
    run_now,
    run_to_end,
    running_workers,
)


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(database_url, redis_url) as test_client:
        yield test_client


async def run_with(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    pipeline: list[dict[str, Any]],
    limits: WorkLimits | None = None,
) -> dict[str, Any]:
    task = await create_task(client, pipeline, max_retries=0)
    config = dataclasses.replace(FAST, work_limits=limits or WorkLimits())
    async with running_workers(database_url, redis_url, config=config):
        return await run_to_end(client, await run_now(client, task["id"]))


async def test_echoing_the_whole_context_again_and_again_neither_recurses_nor_explodes(
    client: httpx.AsyncClient, database_url: str, redis_url: str, pool: asyncpg.Pool
) -> None:
    pipeline = [{"id": f"s{i}", "uses": "debug.echo", "with": {"x": "${@}"}} for i in range(30)]
    run = await run_with(client, database_url, redis_url, pipeline)

    # Each step's input holds every earlier output: the sizes double until a limit stops it.
    assert run["status"] == "dead", run
    failed = of_type(await run_events(pool, run["id"]), "run.step_failed")
    assert len(failed) == 1
    assert "ORDINAUT_STEP_INPUT_MAX_BYTES" in failed[0]["error"]

    short = [{"id": f"s{i}", "uses": "debug.echo", "with": {"x": "${@}"}} for i in range(3)]
    run = await run_with(client, database_url, redis_url, short)
    assert run["status"] == "succeeded", run
    last = run["steps"][-1]["output"]["x"]
    assert last["steps"]["s1"]["x"]["steps"]["s0"]["x"]["params"] == {"n": 3, "who": "Ana"}


async def test_a_foreach_over_more_items_than_allowed_fails_its_step(
    client: httpx.AsyncClient, database_url: str, redis_url: str, pool: asyncpg.Pool
) -> None:
    make = {"id": "make", "uses": "debug.echo", "with": {"xs": [1, 2, 3, 4, 5]}}
    echo = {"id": "e", "uses": "debug.echo", "with": {"i": "${item}"}}
    loop = {
        "id": "loop",
        "uses": "pipeline.foreach",
        "with": {"items_path": "steps.make.xs", "body": [echo]},
    }
    run = await run_with(
        client, database_url, redis_url, [make, loop], WorkLimits(foreach_max_items=4)
    )
    assert run["status"] == "dead", run
    [failed] = of_type(await run_events(pool, run["id"]), "run.step_failed")
    assert failed["step_id"] == "loop"
    assert failed["tool"] == "pipeline.foreach"
    assert "5 items exceeds the limit of 4 (ORDINAUT_FOREACH_MAX_ITEMS)" in failed["error"]
    assert not [s for s in run["steps"] if s["id"].startswith("loop[")]


async def test_a_template_repeating_a_large_value_stops_at_the_input_limit(
    client: httpx.AsyncClient, database_url: str, redis_url: str, pool: asyncpg.Pool
) -> None:
    big = {"id": "big", "uses": "debug.echo", "with": {"s": "x" * 2000}}
    text = "${steps.big.s}" * 200  # 400 kB if rendered whole
    repeat = {"id": "repeat", "uses": "debug.echo", "with": {"t": text}}
    run = await run_with(
        client, database_url, redis_url, [big, repeat], WorkLimits(step_input_max_bytes=10_000)
    )
    assert run["status"] == "dead", run
    [failed] = of_type(await run_events(pool, run["id"]), "run.step_failed")
    assert failed["step_id"] == "repeat"
    assert "repeat.with.t" in failed["error"]
    assert "(ORDINAUT_STEP_INPUT_MAX_BYTES)" in failed["error"]


async def test_task_creation_refuses_foreach_nested_deeper_than_allowed(
    client: httpx.AsyncClient,
) -> None:
    body: list[dict[str, Any]] = [{"id": "e", "uses": "debug.echo"}]
    for level in range(4):
        body = [
            {
                "id": f"l{level}",
                "uses": "pipeline.foreach",
                "with": {"items_path": "params.xs", "body": body},
            }
        ]
    task = {
        "title": "t",
        "schedule_kind": "cron",
        "schedule_expr": "0 0 1 1 *",
        "payload": {"pipeline": body, "params": {"xs": [1]}},
    }
    response = await client.post("/tasks", json=task, headers=AUTH)
    assert response.status_code == 422, response.text
    assert "ORDINAUT_FOREACH_MAX_DEPTH" in response.text


async def test_a_template_that_cannot_be_evaluated_fails_its_own_step(
    client: httpx.AsyncClient, database_url: str, redis_url: str, pool: asyncpg.Pool
) -> None:
    source = {"id": "src", "uses": "debug.echo", "with": {"a": 1}}
    reader = {"id": "reader", "uses": "debug.echo", "with": {"b": "${steps.src.nope.deeper}"}}
    run = await run_with(client, database_url, redis_url, [source, reader], WorkLimits())
    assert run["status"] == "dead", run
    [failed] = of_type(await run_events(pool, run["id"]), "run.step_failed")
    assert (failed["step_id"], failed["tool"], failed["retryable"]) == (
        "reader",
        "debug.echo",
        False,
    )
    assert "reader.with.b" in failed["error"]
    step = next(s for s in run["steps"] if s["id"] == "reader")
    assert step["status"] == "failed"
    assert step["error"] == failed["error"]
