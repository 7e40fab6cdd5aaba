"""The SQL behind recording external events (services/application/triggers.py decides what
they fire): their idempotency keys and results in ``command_log``, the tasks subscribed to
their topics, and the due_work rows of the runs they join."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from domain.events import TaskDefinition
from domain.triggers import ConditionState, Subscriber
from projections.base import Connection

_definition = msgspec.json.Decoder(TaskDefinition)

# Every active event/condition task whose topic glob matches one of the topics. The glob becomes
# a LIKE pattern (`_` escaped first); the domain checks the match again, and the filter.
_SUBSCRIBERS = r"""
SELECT t.id, t.created_by, t.definition::text AS definition, c.value, c.payload::text AS payload
FROM task t LEFT JOIN condition_state c ON c.task_id = t.id
WHERE t.status = 'active' AND NOT t.deleted AND t.schedule_kind IN ('event', 'condition')
  AND EXISTS (SELECT FROM unnest($1::text[]) AS e(topic)
              WHERE e.topic LIKE replace(replace(replace(t.schedule_expr, '_', '\_'), '*', '%'),
                                         '?', '_'))
ORDER BY t.created_at, t.id
FOR SHARE OF t
"""
_LOCK_RUNS = "SELECT 1 FROM due_work WHERE run_id = ANY($1::text[]) ORDER BY run_id FOR UPDATE"


async def event_id_at(conn: Connection, position: int) -> str:
    """The ``event_id`` of the event.received at ``position``."""
    return str(
        await conn.fetchval("SELECT data->>'event_id' FROM events WHERE position = $1", position)
    )


async def read_subscribers(
    conn: Connection, topics: Sequence[str]
) -> tuple[list[Subscriber], dict[str, ConditionState]]:
    """The active event and condition tasks listening to any of ``topics`` (held FOR SHARE
    until the caller commits), and the condition tasks' current states."""
    rows = await conn.fetch(_SUBSCRIBERS, topics)
    found = [
        Subscriber(r["id"], r["created_by"], _definition.decode(r["definition"])) for r in rows
    ]
    states = {
        r["id"]: ConditionState(r["value"], msgspec.json.decode(r["payload"]))
        for r in rows
        if r["value"] is not None
    }
    return found, states


async def lock_runs(conn: Connection, run_ids: list[str]) -> None:
    """Lock the runs' due_work rows, in run_id order (as the recorder and run commands do)."""
    await conn.execute(_LOCK_RUNS, run_ids)
