"""The `condition_state` read model: what each condition task's next evaluation starts from."""

from __future__ import annotations

import msgspec

from domain.envelope import Envelope
from domain.events import ConditionEvaluated, TaskUpdated
from projections.base import Connection

# A task whose condition or watched topics changed starts again from "unknown".
_RESET_ON = frozenset({"condition", "filter", "schedule_kind", "schedule_expr"})
_RESET = "DELETE FROM condition_state WHERE task_id = $1"

_UPSERT = """
INSERT INTO condition_state (task_id, value, payload, event_id, evaluated_at)
VALUES ($1, $2, $3::jsonb, $4, $5)
ON CONFLICT (task_id) DO UPDATE
SET value = excluded.value, payload = excluded.payload, event_id = excluded.event_id,
    evaluated_at = excluded.evaluated_at
"""


class ConditionProjection:
    """Maintains the `condition_state` table."""

    name: str = "condition"
    tables: tuple[str, ...] = ("condition_state",)
    handles: frozenset[str] = frozenset({"condition.evaluated", "task.updated"})

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """Keep the latest recorded value and the payload that set it."""
        event = envelope.event
        if isinstance(event, TaskUpdated) and _RESET_ON.intersection(event.changed):
            await conn.execute(_RESET, event.task_id)
        elif isinstance(event, ConditionEvaluated):
            await conn.execute(
                _UPSERT,
                event.task_id,
                event.value,
                msgspec.json.encode(event.payload).decode(),
                event.event_id,
                envelope.recorded_at,
            )
