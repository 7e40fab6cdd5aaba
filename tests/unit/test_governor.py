"""The worker's governor: quiet hours of a task and its owner together, and short waits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.events import QuietWindow, RunQueued, TaskDefinition, ToolRegistered
from services.pipeline.governance import Defer, Governor
from services.pipeline.run import LeasedRun, OwnerLimits

AT = datetime(2026, 6, 1, 21, 30, tzinfo=UTC)
NOTIFY = ToolRegistered(
    address="chat.send", transport="http", endpoint="https://x.example", scopes=("notify",)
)


def _run(task_windows: list[QuietWindow], owner: OwnerLimits | None) -> LeasedRun:
    definition = TaskDefinition(
        title="t",
        schedule_kind="cron",
        schedule_expr="0 0 1 1 *",
        timezone="Europe/Chisinau",
        quiet_hours=tuple(task_windows),
    )
    queued = RunQueued(run_id="r", task_id="t", owner="agent", scheduled_for=AT, run_at=AT)
    return LeasedRun(
        run_id="r",
        task_id="t",
        task_title="t",
        attempt=1,
        trigger="run_now",
        scheduled_for=AT,
        definition=definition,
        queued=queued,
        steps={},
        lease_until=AT,
        owner_limits=owner,
    )


def _governor(at: datetime) -> Governor:
    pool: Any = None  # quiet hours need no database
    return Governor(pool, clock=lambda: at)


async def test_task_and_owner_windows_chain_into_one_quiet_spell() -> None:
    # 21:30 UTC is 00:30 in Chisinau (UTC+3 in summer): inside the task's 00:00-01:00 window,
    # whose end (22:00 UTC) is inside the owner's 21:45-23:00 UTC window.
    task = [QuietWindow(start="00:00", end="01:00")]
    owner = OwnerLimits(quiet_hours=(QuietWindow(start="21:45", end="23:00"),), timezone="UTC")
    verdict = await _governor(AT).admit(_run(task, owner), NOTIFY)
    assert verdict == Defer(datetime(2026, 6, 1, 23, 0, tzinfo=UTC))
    alone = await _governor(AT).admit(_run(task, None), NOTIFY)
    assert alone == Defer(datetime(2026, 6, 1, 22, 0, tzinfo=UTC))


async def test_only_notifying_tools_wait_and_a_window_about_to_end_is_waited_out() -> None:
    task = [QuietWindow(start="00:00", end="01:00")]
    plain = ToolRegistered(address="db.read", transport="http", endpoint="https://x.example")
    assert await _governor(AT).admit(_run(task, None), plain) is None
    almost = datetime(2026, 6, 1, 21, 59, 59, 800_000, tzinfo=UTC)
    clock = iter([almost, datetime(2026, 6, 1, 22, 0, tzinfo=UTC)])
    governor = Governor(None, clock=lambda: next(clock))  # type: ignore[arg-type]
    assert await governor.admit(_run(task, None), NOTIFY) is None
