"""The `spend` read model: what tool calls cost, per task (its local day) and agent (UTC day)."""

from __future__ import annotations

from datetime import date

from domain.envelope import Envelope
from domain.events import RunStepSucceeded
from projections.base import Connection, Statement, run_plan
from projections.rules import spend as rules

# The run's row says whose task it is; it exists from run.queued, applied before any step.
_ADD = """
INSERT INTO spend (scope, subject, day, amount)
SELECT s.scope, s.subject, s.day, $2 FROM runs r, LATERAL (VALUES
    ('task', r.task_id, $3::date),
    ('agent', r.owner, ($4::timestamptz AT TIME ZONE 'UTC')::date)) AS s(scope, subject, day)
WHERE r.run_id = $1
ON CONFLICT (scope, subject, day) DO UPDATE SET amount = spend.amount + EXCLUDED.amount
"""


class SpendProjection:
    """Maintains the `spend` table."""

    name: str = "spend"
    tables: tuple[str, ...] = ("spend",)
    handles: frozenset[str] = rules.HANDLES

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """Add one step's cost to its task's and its agent's day."""
        await run_plan(conn, self.plan(envelope))

    def plan(self, envelope: Envelope) -> list[Statement]:
        """Nothing for a step that cost nothing."""
        event = envelope.event
        if not isinstance(event, RunStepSucceeded) or event.cost <= 0:
            return []
        day = date.fromisoformat(event.cost_day) if event.cost_day else envelope.recorded_at.date()
        return [(_ADD, (event.run_id, event.cost, day, envelope.recorded_at))]
