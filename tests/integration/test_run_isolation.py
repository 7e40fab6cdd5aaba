"""A fault inside one run is recorded on that run and touches no other run: not the runs
leased or recorded with it, not the worker; and every such run ends, its attempts counted."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import asyncpg
import httpx

from domain.envelope import EventMeta
from domain.events import RunStarted, RunStepSucceeded, RunSucceeded, run_stream
from projections.registry import inline_projections
from services.pipeline.recording import RecordOutcome, RecordRejected
from services.store.events import StreamAppend, append_in_transaction
from services.worker.leases import MAX_LAPSES, lease
from services.worker.recorder import Recorder
from tests.tools_servers.step_tool import StepTool
from tests.ui_client import ALL_SCOPES, agent_token
from tests.workers import (
    AUTH,
    FAST,
    create_task,
    of_type,
    register_tool,
    run_events,
    run_now,
    run_to_end,
    running_workers,
)

# A short retry schedule: three attempts, 0.2 s apart.
SHORT_RETRIES = {"max_retries": 2, "backoff_strategy": "fixed", "backoff_base_seconds": 0.2}
# A step whose tool answers with text PostgreSQL cannot store (a NUL character): the step's
# output can never be recorded, so every attempt of its run fails while recording.
UNRECORDABLE = {"id": "loop", "uses": "poison.nul", "with": {}}


async def agent_task(
    client: httpx.AsyncClient, token: str, pipeline: list[dict[str, Any]], **fields: Any
) -> str:
    """A task created by the agent holding ``token``; its id."""
    body = {
        "title": "t",
        "schedule_kind": "cron",
        "schedule_expr": "0 0 1 1 *",
        "payload": {"pipeline": pipeline},
        **fields,
    }
    response = await client.post("/tasks", json=body, headers=_bearer(token))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def agent_run_now(client: httpx.AsyncClient, token: str, task_id: str) -> str:
    response = await client.post(f"/tasks/{task_id}/run_now", headers=_bearer(token))
    assert response.status_code == 202, response.text
    return str(response.json()["run_id"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_poison_run_fails_alone_and_the_40_runs_leased_with_it_succeed(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    tool: tuple[StepTool, str],
    database_url: str,
    redis_url: str,
) -> None:
    await register_tool(client, "poison.nul", f"{tool[1]}/nul")
    _, token_a = await agent_token(client, "agent-a", ALL_SCOPES)
    _, token_b = await agent_token(client, "agent-b", ALL_SCOPES)
    poison_task = await agent_task(client, token_a, [UNRECORDABLE], **SHORT_RETRIES)
    fine_task = await agent_task(
        client, token_b, [{"id": "hello", "uses": "debug.echo", "with": {"n": "${run.id}"}}]
    )
    poison = await agent_run_now(client, token_a, poison_task)
    fine = [await agent_run_now(client, token_b, fine_task) for _ in range(40)]
    # One worker with room for all 41: they are leased in one batch, run side by side, and
    # their events are recorded in shared transactions. A lease long enough that a starved
    # CI machine does not let one lapse: this test is about the poison, not lease takeovers
    # (with 2 s, a loaded clean-clone run once re-leased the poison's third attempt).
    config = dataclasses.replace(FAST, concurrency=48, lease_seconds=10.0)
    async with running_workers(database_url, redis_url, config=config):
        ends = await asyncio.gather(*(run_to_end(client, r, within=30) for r in fine))
        dead = await run_to_end(client, poison, within=30)
    assert [run["status"] for run in ends] == ["succeeded"] * 40
    assert all(run["attempt"] == 1 for run in ends)  # none was re-leased
    assert dead["status"] == "dead", dead
    assert 1 <= dead["attempt"] <= 3  # within its retry schedule, never re-leased forever
    assert dead["error"]
    events = await run_events(pool, poison)
    failures = of_type(events, "run.step_failed")
    assert len(failures) == dead["attempt"]
    assert all(f["step_id"] == "loop" and f["error"] == dead["error"] for f in failures)
    started = of_type(events, "run.started")
    assert [e["attempt"] for e in started] == list(range(1, dead["attempt"] + 1))
    assert not any(e["resumed"] for e in started)  # every attempt ended by its own record


async def test_an_output_that_cannot_be_recorded_fails_the_attempt_and_is_retried(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    tool: tuple[StepTool, str],
    database_url: str,
    redis_url: str,
) -> None:
    await register_tool(client, "poison.nul", f"{tool[1]}/nul")
    task = await create_task(client, [UNRECORDABLE], **SHORT_RETRIES)
    run_id = await run_now(client, task["id"])
    async with running_workers(database_url, redis_url):
        run = await run_to_end(client, run_id)
    assert run["status"] == "dead", run
    assert run["attempt"] == 3  # the failure may pass (retryable): every retry was spent
    assert "could not be recorded" in run["error"]
    assert "NUL character" in run["error"]
    events = await run_events(pool, run_id)
    assert [e["type"] for e in events if e["type"].startswith("run.attempt")] == [
        "run.attempt_failed",
        "run.attempt_failed",
    ]


async def test_a_removed_tool_under_on_error_continue_fails_its_step_and_the_run_goes_on(
    client: httpx.AsyncClient, tool: tuple[StepTool, str], database_url: str, redis_url: str
) -> None:
    _, base_url = tool
    await register_tool(client, "gone.soon", f"{base_url}/ok")
    task = await create_task(
        client,
        [
            {"id": "call", "uses": "gone.soon", "with": {}, "on_error": "continue"},
            {"id": "after", "uses": "debug.echo", "with": {"seen": "${steps.call.error}"}},
        ],
    )
    response = await client.delete("/tools/gone.soon", headers=AUTH)
    assert response.status_code == 204, response.text
    async with running_workers(database_url, redis_url):
        run = await run_to_end(client, await run_now(client, task["id"]))
    assert run["status"] == "succeeded", run
    assert run["attempt"] == 1
    call, after = run["steps"]
    assert call["status"] == "failed"
    assert "no longer in the catalog" in call["error"]
    assert after["output"] == {"seen": call["error"]}


async def test_a_removed_tool_fails_the_run_at_once_without_on_error(
    client: httpx.AsyncClient, tool: tuple[StepTool, str], database_url: str, redis_url: str
) -> None:
    _, base_url = tool
    await register_tool(client, "gone.later", f"{base_url}/ok")
    task = await create_task(client, [{"id": "call", "uses": "gone.later", "with": {}}])
    assert (await client.delete("/tools/gone.later", headers=AUTH)).status_code == 204
    async with running_workers(database_url, redis_url):
        run = await run_to_end(client, await run_now(client, task["id"]))
    assert (run["status"], run["attempt"]) == ("dead", 1), run
    assert "no longer in the catalog" in run["error"]


async def test_a_run_whose_lease_keeps_lapsing_counts_a_failed_attempt(
    client: httpx.AsyncClient, pool: asyncpg.Pool, database_url: str, redis_url: str
) -> None:
    # Three workers leased the run's first attempt in turn and vanished (killed, hung, cut off
    # from the database): the next lease ends that attempt instead of resuming it forever.
    task = await create_task(
        client, [{"id": "hello", "uses": "debug.echo", "with": {"n": 1}}], **SHORT_RETRIES
    )
    run_id = await run_now(client, task["id"])
    for ghost in range(MAX_LAPSES):
        lapsed = await pool.fetchval("SELECT now() - interval '1 second'")
        started = RunStarted(
            run_id=run_id, attempt=1, worker=f"ghost-{ghost}", lease_until=lapsed, resumed=ghost > 0
        )
        async with pool.acquire() as conn, conn.transaction():
            meta = EventMeta(actor=f"ghost-{ghost}", correlation_id=f"ghost-{ghost}")
            await append_in_transaction(
                conn, [StreamAppend(run_stream(run_id), [started])], meta, inline_projections()
            )
    async with running_workers(database_url, redis_url):
        run = await run_to_end(client, run_id)
    assert (run["status"], run["attempt"]) == ("succeeded", 2), run
    failed = of_type(await run_events(pool, run_id), "run.attempt_failed")
    assert len(failed) == 1
    assert failed[0]["attempt"] == 1
    assert f"lapsed {MAX_LAPSES} times" in failed[0]["error"]


async def test_a_batch_with_one_unrecordable_run_records_the_others(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    task = await create_task(client, [{"id": "hello", "uses": "debug.echo", "with": {}}])
    run_ids = [await run_now(client, task["id"]) for _ in range(3)]
    async with pool.acquire() as conn:
        leased, _ = await lease(conn, inline_projections(), "w-1", limit=3, lease_seconds=30)
    assert sorted(r.run_id for r in leased) == sorted(run_ids)
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    recorder = Recorder(pool, inline_projections(), "w-1")
    stop = asyncio.Event()
    flushing = asyncio.create_task(recorder.run(stop))
    # Queued before the recorder wakes: one batch, one transaction, which the middle run breaks.
    broken = RunStepSucceeded(
        run_id=run_ids[1], step_id="hello", attempt=1, tool="debug.echo", output=cyclic
    )
    records = [
        recorder.record(run_ids[0], [RunSucceeded(run_id=run_ids[0], attempt=1)]),
        recorder.record(run_ids[1], [broken]),
        recorder.record(run_ids[2], [RunSucceeded(run_id=run_ids[2], attempt=1)]),
    ]
    outcomes = await asyncio.gather(*records, return_exceptions=True)
    stop.set()
    await flushing
    assert outcomes[0] is RecordOutcome.RECORDED
    assert isinstance(outcomes[1], RecordRejected)
    assert "RecursionError" in str(outcomes[1])
    assert outcomes[2] is RecordOutcome.RECORDED
    statuses = {
        r["run_id"]: r["status"]
        for r in await pool.fetch(
            "SELECT run_id, status FROM runs WHERE run_id = ANY($1::text[])", run_ids
        )
    }
    assert statuses == {run_ids[0]: "succeeded", run_ids[1]: "running", run_ids[2]: "succeeded"}
