"""The key a tool call gets: the step's declared key, rendered over the run's data, or else one
made of the run and the step (the runner renders nothing for a step that declares none)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.events import Event, RunQueued, TaskDefinition, ToolRegistered
from domain.tools import BUILTIN_TOOLS
from services.pipeline.recording import RecordOutcome
from services.pipeline.run import LeasedRun
from services.pipeline.runner import Runner


def _leased(step: dict[str, Any]) -> LeasedRun:
    run_id, now = str(uuid.uuid4()), datetime.now(UTC)
    definition = TaskDefinition(
        title="keys",
        schedule_kind="once",
        schedule_expr=now.isoformat(),
        payload={"pipeline": [step]},
    )
    queued = RunQueued(
        run_id=run_id, task_id="t", owner="a", scheduled_for=now, run_at=now, trigger="run_now"
    )
    return LeasedRun(
        run_id=run_id,
        task_id="t",
        task_title="keys",
        attempt=1,
        trigger="run_now",
        scheduled_for=now,
        definition=definition,
        queued=queued,
        steps={},
        lease_until=now + timedelta(seconds=30),
    )


async def _keys_called(step: dict[str, Any]) -> tuple[LeasedRun, list[str]]:
    keys: list[str] = []

    async def record(run_id: str, events: list[Event]) -> RecordOutcome:
        return RecordOutcome.RECORDED

    async def find_tool(address: str) -> ToolRegistered | None:
        return BUILTIN_TOOLS.get(address)

    async def call_tool(
        tool: ToolRegistered, arguments: dict[str, Any], key: str, seconds: float
    ) -> Any:
        keys.append(key)
        return arguments

    async def publish(run: LeasedRun, arguments: dict[str, Any], key: str) -> dict[str, Any]:
        raise AssertionError("no step publishes")

    run = _leased(step)
    runner = Runner(record=record, find_tool=find_tool, call_tool=call_tool, publish=publish)
    await runner.execute(run)
    return run, keys


async def test_a_step_without_a_key_gets_one_made_of_its_run_and_path() -> None:
    run, keys = await _keys_called({"id": "echo", "uses": "debug.echo", "with": {"n": 1}})
    assert keys == [f"{run.run_id}:echo"]


async def test_a_declared_key_is_rendered_over_the_runs_data() -> None:
    step = {
        "id": "echo",
        "uses": "debug.echo",
        "with": {"n": 1},
        "idempotency_key": "order-${run.id}",
    }
    run, keys = await _keys_called(step)
    assert keys == [f"order-{run.run_id}"]
