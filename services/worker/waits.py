"""Entering a durable wait: the step's ``run.waiting`` (built by services/pipeline/wait_steps.py)
recorded together with an early resume when the awaited event is already in the log.

The worker records ``run.waiting`` holding the waits lock exclusively (publications hold it
shared: services/store/wait_resumes.py), after reading the log from the run's first event on
(READ COMMITTED: the read comes after the lock was granted, so it sees every event committed
before). An event committed later finds the run waiting (the publish
path, services/application/triggers.py). Either way no event in between is lost.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from domain.envelope import EventMeta
from domain.events import EventReceived, RunCanceled, RunResumed, RunWaiting, run_stream
from domain.triggers import event_context
from domain.waits import matches
from projections.base import ProjectionSet
from services.pipeline.recording import RecordOutcome
from services.store.events import StreamAppend, append_in_transaction
from services.store.wait_resumes import hold_for_wait_entry

# FOR UPDATE OF d: the run's due_work row, where everything that appends to a run meets (the
# recorder, run commands, a publication resuming it).
_HELD = """
SELECT r.cancel_requested, r.owner FROM due_work d JOIN runs r USING (run_id)
WHERE d.run_id = $1 AND d.locked_by = $2
FOR UPDATE OF d
"""
_FIRST_POSITION = "SELECT min(position) FROM events WHERE stream = $1"
# event.received on topics the wait's glob may match, oldest first, a page at a time.
_CANDIDATES = r"""
SELECT position, meta->>'actor' AS actor, data::text AS data FROM events
WHERE type = 'event.received' AND position > $1 AND data->>'topic' LIKE $2
ORDER BY position LIMIT 500
"""
_received = msgspec.json.Decoder(EventReceived)


def like_pattern(glob: str) -> str:
    """A topic glob (``*``, ``?``) as a LIKE pattern; the domain checks the match again."""
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


async def enter_wait(
    pool: asyncpg.Pool, projections: ProjectionSet, worker: str, waiting: RunWaiting
) -> RecordOutcome:
    """Record ``waiting`` if this worker still holds the run (and, for an event wait whose
    event is already recorded, its ``run.resumed`` with it); a canceled run ends instead."""
    async with pool.acquire() as conn, conn.transaction():
        await hold_for_wait_entry(conn)
        held = await conn.fetchrow(_HELD, waiting.run_id, worker)
        if held is None:
            return RecordOutcome.LOST
        stream = run_stream(waiting.run_id)
        events: list[Any]
        if held["cancel_requested"]:
            events = [RunCanceled(run_id=waiting.run_id, reason="canceled on request")]
        else:
            events = await _waiting_events(conn, waiting, str(held["owner"]), stream)
        meta = EventMeta(actor=worker, correlation_id=worker)
        await append_in_transaction(conn, [StreamAppend(stream, events)], meta, projections)
    return RecordOutcome.CANCEL_REQUESTED if held["cancel_requested"] else RecordOutcome.RECORDED


async def _waiting_events(conn: Any, waiting: RunWaiting, owner: str, stream: str) -> list[Any]:
    if waiting.kind != "event":
        return [waiting]
    since = int(await conn.fetchval(_FIRST_POSITION, stream) or 0)
    waiting = msgspec.structs.replace(waiting, since_position=since)
    wait = msgspec.to_builtins(waiting)
    now = datetime.now(UTC)
    after = since
    while True:
        rows = await conn.fetch(_CANDIDATES, after, like_pattern(str(waiting.topic)))
        for row in rows:
            context = event_context(_received.decode(row["data"]))
            if matches(wait, owner, str(row["actor"]), context, now):
                resumed = RunResumed(
                    run_id=waiting.run_id,
                    step_id=waiting.step_id,
                    reason="event",
                    output=context,
                    position=row["position"],
                )
                return [waiting, resumed]
        if len(rows) < 500:
            return [waiting]
        after = rows[-1]["position"]
