"""What tool calls cost (the `spend` table): per task and its local day, per agent and UTC day."""

from __future__ import annotations

from datetime import UTC, date

from domain.envelope import Envelope
from domain.events import RunStepSucceeded
from projections.rules.row import Row

SpendKey = tuple[str, str, date]  # (scope, subject, day)
HANDLES = frozenset({"run.step_succeeded"})


def costs(run: Row | None, envelope: Envelope) -> list[tuple[SpendKey, float]]:
    """What a step's cost adds to its task's day and its agent's day (nothing for a step that
    cost nothing, or of a run that has no row)."""
    event = envelope.event
    if not isinstance(event, RunStepSucceeded) or event.cost <= 0 or run is None:
        return []
    at = envelope.recorded_at
    task_day = date.fromisoformat(event.cost_day) if event.cost_day else at.date()
    agent_day = at.astimezone(UTC).date()
    return [
        (("task", run["task_id"], task_day), event.cost),
        (("agent", run["owner"], agent_day), event.cost),
    ]
