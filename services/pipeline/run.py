"""The run a pipeline executes: what the lease loaded, everything executing it needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.events import QuietWindow, RunQueued, TaskDefinition


@dataclass(frozen=True)
class OwnerLimits:
    """What the admin set for the agent owning a run's task (see ``agent.limits_set``)."""

    budget_per_day: float | None = None
    quiet_hours: tuple[QuietWindow, ...] = ()
    timezone: str = "UTC"


@dataclass(frozen=True)
class LeasedRun:
    """A run this worker holds, with everything executing it needs."""

    run_id: str
    task_id: str
    task_title: str
    attempt: int
    trigger: str
    scheduled_for: datetime
    definition: TaskDefinition
    queued: RunQueued
    # step path -> the recorded step (status, output, ...), from earlier attempts or workers
    steps: dict[str, Any]
    lease_until: datetime
    owner_limits: OwnerLimits | None = None
