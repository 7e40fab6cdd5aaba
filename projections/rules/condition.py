"""What each event does to a condition task's state (the `condition_state` table): the value
its next evaluation starts from and the payload that set it."""

from __future__ import annotations

from domain.envelope import Envelope
from domain.events import ConditionEvaluated, TaskUpdated, condition_stream
from projections.rules.row import Model, Row, Rule, json_text

TABLE = "condition_state"
KEY = "task_id"
COLUMNS = ("task_id", "value", "payload", "event_id", "evaluated_at")
# A task whose condition or watched topics changed starts again from "unknown".
RESET_ON = frozenset({"condition", "filter", "schedule_kind", "schedule_expr"})


def key_of(envelope: Envelope) -> str:
    """The condition task an event concerns."""
    event = envelope.event
    assert isinstance(event, ConditionEvaluated | TaskUpdated)
    return event.task_id


def _evaluated(row: Row | None, envelope: Envelope) -> Row | None:
    """The latest recorded value and the payload that set it."""
    event = envelope.event
    assert isinstance(event, ConditionEvaluated)
    return {
        "task_id": event.task_id,
        "value": event.value,
        "payload": json_text(event.payload),
        "event_id": event.event_id,
        "evaluated_at": envelope.recorded_at,
    }


def _updated(row: Row | None, envelope: Envelope) -> Row | None:
    event = envelope.event
    assert isinstance(event, TaskUpdated)
    return None if RESET_ON.intersection(event.changed) else row


RULES: dict[str, Rule] = {"condition.evaluated": _evaluated, "task.updated": _updated}
MODEL = Model(
    TABLE,
    KEY,
    COLUMNS,
    frozenset(),
    RULES,
    key_of,
    condition_stream,
    json_text_columns=frozenset({"payload"}),
)
