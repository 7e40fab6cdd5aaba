"""Re-running a run from a step: kept steps are not called again, and the runs link."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest

from tests.tools_servers.step_tool import StepTool, serving
from tests.workers import (
    AUTH,
    api_client,
    create_task,
    get_run,
    register_tool,
    run_events,
    run_now,
    run_to_end,
    running_workers,
)


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(database_url, redis_url) as test_client:
        yield test_client


@pytest.fixture
def tool() -> Iterator[tuple[StepTool, str]]:
    step_tool = StepTool()
    with serving(step_tool) as base_url:
        yield step_tool, base_url


PIPELINE = [
    {"id": "fetch", "uses": "test.fetch", "with": {"url": "https://example.org/${params.n}"}},
    {"id": "summarise", "uses": "test.flaky", "with": {"text": "${steps.fetch.input.url}"}},
    {"id": "file", "uses": "debug.echo", "with": {"summary": "${steps.summarise.input.text}"}},
]


async def failed_run(
    client: httpx.AsyncClient, database_url: str, redis_url: str, tool: tuple[StepTool, str]
) -> tuple[dict[str, object], str]:
    server, base_url = tool
    await register_tool(client, "test.fetch", f"{base_url}/ok")
    await register_tool(client, "test.flaky", f"{base_url}/flaky")
    server.failing = True
    task = await create_task(client, PIPELINE, max_retries=0)
    run_id = await run_now(client, str(task["id"]))
    async with running_workers(database_url, redis_url):
        dead = await run_to_end(client, run_id)
    assert dead["status"] == "dead", dead
    return task, run_id


async def test_a_failed_run_reruns_from_its_failed_step_without_calling_the_steps_before(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    pool: asyncpg.Pool,
    tool: tuple[StepTool, str],
) -> None:
    server, _ = tool
    _, run_id = await failed_run(client, database_url, redis_url, tool)
    assert server.count(f"{run_id}:fetch") == 1
    server.failing = False  # the tool is fixed
    response = await client.post(
        f"/runs/{run_id}/rerun", json={"from_step": "summarise"}, headers=AUTH
    )
    assert response.status_code == 201, response.text
    rerun = response.json()
    assert rerun["rerun_of"] == run_id
    assert rerun["trigger"] == "rerun"
    async with running_workers(database_url, redis_url):
        done = await run_to_end(client, rerun["id"])
    assert done["status"] == "succeeded", done
    steps = {step["id"]: step for step in done["steps"]}
    assert steps["file"]["output"] == {"summary": "https://example.org/3"}
    # fetch was not called again: its output is the original run's
    assert server.count(f"{rerun['id']}:fetch") == 0
    assert len([c for c in server.calls if c.path == "/ok"]) == 1
    assert server.count(f"{rerun['id']}:summarise") == 1
    original = await get_run(client, run_id)
    assert original["reruns"] == [rerun["id"]]
    assert original["status"] == "dead"
    history = [e["type"] for e in await run_events(pool, run_id)]
    assert history[-1] == "run.rerun_requested"
    caused = await pool.fetchval(
        "SELECT meta->>'causation_id' FROM events WHERE stream = $1 AND version = 1",
        f"run-{rerun['id']}",
    )
    assert caused == run_id
    kept = (await run_events(pool, rerun["id"]))[1]
    assert (kept["type"], kept["step_id"], kept["reused_from"]) == (
        "run.step_succeeded",
        "fetch",
        run_id,
    )


async def test_a_rerun_is_refused_for_an_unknown_step_or_a_changed_pipeline(
    client: httpx.AsyncClient, database_url: str, redis_url: str, tool: tuple[StepTool, str]
) -> None:
    task, run_id = await failed_run(client, database_url, redis_url, tool)
    url = f"/runs/{run_id}/rerun"
    unknown = await client.post(url, json={"from_step": "nope"}, headers=AUTH)
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["errors"][0]["field"] == "from_step"
    not_done = await client.post(url, json={"from_step": "file"}, headers=AUTH)
    assert not_done.status_code == 409, not_done.text
    assert "'summarise' did not succeed" in not_done.text
    # changing a step after from_step is fine; changing one before it is not
    changed = [PIPELINE[0], PIPELINE[1], {**PIPELINE[2], "with": {"summary": "x"}}]
    patched = await client.patch(
        f"/tasks/{task['id']}", json={"payload": {"pipeline": changed}}, headers=AUTH
    )
    assert patched.status_code == 200, patched.text
    assert (
        await client.post(url, json={"from_step": "summarise"}, headers=AUTH)
    ).status_code == 201
    changed[0] = {**PIPELINE[0], "with": {"url": "https://example.org/other"}}
    patched = await client.patch(
        f"/tasks/{task['id']}", json={"payload": {"pipeline": changed}}, headers=AUTH
    )
    assert patched.status_code == 200, patched.text
    refused = await client.post(url, json={"from_step": "summarise"}, headers=AUTH)
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"][0]["field"] == "from_step"
    assert "changed before 'summarise'" in refused.text
    empty = await client.post(url, json={}, headers=AUTH)
    assert empty.status_code in (400, 422), empty.text
