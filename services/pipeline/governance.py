"""Governance at each tool call: quiet hours defer notifying steps, budgets stop costly ones.

Rules come from `domain` (windows, budgets); this module gathers what they need: the
task's and its owner's settings (loaded with the lease) and today's spend (a read model).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg
import structlog

from domain.budgets import Budget, Overrun, check_call
from domain.events import (
    BudgetExceeded,
    Event,
    RunDead,
    RunDeferred,
    RunStepFailed,
    ToolRegistered,
)
from domain.quiet_hours import quiet_until
from domain.schedules import validate_timezone
from services.pipeline.run import LeasedRun

NOTIFY_SCOPE = "notify"
SHORT_WAIT = timedelta(seconds=1)
log = structlog.get_logger(__name__)
_SPENT = """
SELECT scope, amount FROM spend
WHERE (scope = 'task' AND subject = $1 AND day = $2::date)
   OR (scope = 'agent' AND subject = $3 AND day = $4::date)
"""


@dataclass(frozen=True)
class Defer:
    """The step must wait until ``until`` (quiet hours)."""

    until: datetime


Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Governor:
    """Decides, before a tool call, whether it goes ahead, waits, or stops the run."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock = _utc_now) -> None:
        self.pool, self.clock = pool, clock

    async def admit(self, run: LeasedRun, tool: ToolRegistered) -> Defer | Overrun | None:
        """None to call the tool now; Defer to wait; Overrun to stop the run for good."""
        now = self.clock()
        if NOTIFY_SCOPE in tool.scopes:
            until = self.quiet_until(run, now)
            if until is not None and until - now <= SHORT_WAIT:
                # About to end (or this host's clock is a little behind the database's,
                # which made the run due): wait here rather than park and be leased again.
                await asyncio.sleep((until - now).total_seconds())
                now = self.clock()
                until = self.quiet_until(run, now)
            if until is not None:
                return Defer(until)
        if tool.transport == "builtin":
            return None  # builtins cost nothing
        budgets = await self._budgets(run, now)
        return check_call(budgets, tool.cost_per_call or 0.0, may_cost=True) if budgets else None

    def quiet_until(self, run: LeasedRun, now: datetime) -> datetime | None:
        """The end of the quiet hours (the task's and its owner's) holding ``now``, if any."""
        task_zone = validate_timezone(run.definition.timezone)
        owner = run.owner_limits
        sets = [(run.definition.quiet_hours, task_zone)]
        if owner is not None and owner.quiet_hours:
            sets.append((owner.quiet_hours, validate_timezone(owner.timezone)))
        moment, moved = now, False
        for _ in range(4):  # one set's end may fall in the other's window; follow both
            step = False
            for windows, zone in sets:
                until = quiet_until(moment, windows, zone) if windows else None
                if until is not None:
                    moment, step, moved = until, True, True
            if not step:
                break
        return moment if moved else None

    def stopping(
        self, run: LeasedRun, path: str, tool: ToolRegistered, verdict: Defer | Overrun
    ) -> list[Event]:
        """What to record when a step may not go ahead now."""
        if isinstance(verdict, Defer):
            log.info(
                "step deferred by quiet hours",
                run_id=run.run_id,
                step=path,
                until=verdict.until.isoformat(),
            )
            return [
                RunDeferred(
                    run_id=run.run_id, step_id=path, attempt=run.attempt, until=verdict.until
                )
            ]
        budget = verdict.budget
        error = (
            f"budget exceeded: the {budget.scope}'s budget of {budget.limit:g} per day has "
            f"{max(0.0, budget.limit - budget.spent):g} left; {tool.address} costs "
            f"{verdict.cost:g}" + ("" if verdict.cost else " (reported after the call)")
        )
        day = (
            self.cost_day(run)
            if budget.scope == "task"
            else self.clock().astimezone(UTC).date().isoformat()
        )
        log.info("run stopped: budget exceeded", run_id=run.run_id, step=path, scope=budget.scope)
        return [
            RunStepFailed(
                run_id=run.run_id,
                step_id=path,
                attempt=run.attempt,
                tool=tool.address,
                error=error,
                retryable=False,
            ),
            # The owner hears of it (a notifier delivers budget.exceeded to ``owner``).
            BudgetExceeded(
                run_id=run.run_id,
                task_id=run.task_id,
                owner=run.queued.owner,
                step_id=path,
                tool=tool.address,
                scope=budget.scope,
                budget=budget.limit,
                spent=budget.spent,
                cost=verdict.cost,
                day=day,
            ),
            RunDead(run_id=run.run_id, attempt=run.attempt, error=error, reason="budget_exceeded"),
        ]

    def cost_day(self, run: LeasedRun) -> str:
        """Today in the task's zone: the day a cost counts for against the task's budget."""
        zone = validate_timezone(run.definition.timezone)
        return self.clock().astimezone(zone).date().isoformat()

    async def _budgets(self, run: LeasedRun, now: datetime) -> list[Budget]:
        task_limit = run.definition.budget_per_day
        owner_limit = run.owner_limits.budget_per_day if run.owner_limits else None
        if task_limit is None and owner_limit is None:
            return []
        rows = await self.pool.fetch(
            _SPENT,
            run.task_id,
            date.fromisoformat(self.cost_day(run)),
            run.queued.owner,
            now.astimezone(UTC).date(),
        )
        spent = {row["scope"]: float(row["amount"]) for row in rows}
        budgets = []
        if task_limit is not None:
            budgets.append(Budget("task", task_limit, spent.get("task", 0.0)))
        if owner_limit is not None:
            budgets.append(Budget("agent", owner_limit, spent.get("agent", 0.0)))
        return budgets
