"""The SQL behind recording external events (services/application/triggers.py decides what
they fire): their idempotency keys and results in ``command_log``, the tasks subscribed to
their topics, and the due_work rows of the runs they join."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from domain.events import TaskDefinition
from domain.triggers import ConditionState, Subscriber
from projections.base import Connection
from services.store.command_log import CLAIM_KEYS, PRIOR_RESULTS, REMEMBER_RESULTS

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


async def claim_keys(
    conn: Connection, actors: list[str], keys: list[str], fingerprints: list[str]
) -> set[tuple[str, str]]:
    """Reserve each (actor, key); the pairs this call claimed (the others were used before).

    A concurrent first use holds its row until it commits, so a repeat waits here and then
    finds the key used. Callers claim in one order, so two batches sharing keys never deadlock.
    """
    rows = await conn.fetch(CLAIM_KEYS, actors, keys, fingerprints)
    return {(r["actor"], r["idempotency_key"]) for r in rows}


async def prior_uses(
    conn: Connection, actors: list[str], keys: list[str]
) -> dict[tuple[str, str], tuple[str, str]]:
    """(actor, key) -> (fingerprint, result as JSON text: ``null`` when it was not kept)."""
    rows = await conn.fetch(PRIOR_RESULTS, actors, keys)
    return {(r["actor"], r["idempotency_key"]): (r["fingerprint"], r["result"]) for r in rows}


async def remember_results(
    conn: Connection, actors: list[str], keys: list[str | None], results: list[str]
) -> None:
    """Keep each key's result (JSON text) for the repeats that will ask for it."""
    await conn.execute(REMEMBER_RESULTS, actors, keys, results)


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
