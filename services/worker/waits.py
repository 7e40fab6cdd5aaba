"""Entering a durable wait: the step's ``run.waiting``, built from its rendered input, and
recorded together with an early resume when the awaited event is already in the log.

The worker records ``run.waiting`` under the append lock, after reading the log from the
run's first event on (READ COMMITTED: the read comes after the lock was granted, so it sees
every event committed before). An event committed later finds the run waiting (the publish
path, services/store/publish.py). Either way no event in between is lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import msgspec

from domain.envelope import EventMeta
from domain.events import EventReceived, RunCanceled, RunResumed, RunWaiting, run_stream
from domain.triggers import event_context
from domain.waits import MAX_WAIT_SECONDS, SLEEP, WAIT_FOR_EVENT, matches
from projections.base import ProjectionSet
from services.store.events import StreamAppend, append_in_transaction
from services.store.wait_resumes import hold_for_wait_entry
from services.tools.errors import ToolCallError
from services.worker.leases import LeasedRun
from services.worker.recorder import RecordOutcome

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


def waiting_event(
    run: LeasedRun,
    path: str,
    uses: str,
    rendered: Mapping[str, Any],
    scope: Mapping[str, Any],
    now: datetime,
) -> RunWaiting:
    """The ``run.waiting`` of a wait step (its deadline before quiet hours are applied)."""
    common: dict[str, Any] = {
        "run_id": run.run_id,
        "step_id": path,
        "attempt": run.attempt,
        "tool": uses,
        "input": dict(rendered),
    }
    if uses == SLEEP:
        return RunWaiting(kind="sleep", until=_sleep_until(rendered, run, now), **common)
    assert uses == WAIT_FOR_EVENT
    timeout = rendered.get("timeout_seconds")
    until = now + timedelta(seconds=float(timeout)) if timeout is not None else None
    consumed = tuple(
        str(step["output"]["event_id"])
        for step in run.steps.values()
        if step.get("tool") == WAIT_FOR_EVENT
        and isinstance(step.get("output"), dict)
        and "event_id" in step["output"]
    )
    return RunWaiting(
        kind="event",
        topic=str(rendered["topic"]),
        filter=rendered.get("filter"),
        scope={k: scope.get(k) for k in ("params", "steps", "run")},
        until=until,
        on_timeout="default" if rendered.get("on_timeout") == "default" else "fail",
        default=rendered.get("default"),
        consumed=consumed,
        **common,
    )


def _sleep_until(rendered: Mapping[str, Any], run: LeasedRun, now: datetime) -> datetime:
    if "seconds" in rendered:
        return now + timedelta(seconds=float(rendered["seconds"]))
    text = str(rendered["until"])
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ToolCallError(
            f"until: {text!r} is not an ISO-8601 instant", retryable=False
        ) from None
    if instant.tzinfo is None:  # a wall time in the task's zone
        instant = instant.replace(tzinfo=ZoneInfo(run.definition.timezone))
    if instant - now > timedelta(seconds=MAX_WAIT_SECONDS):
        raise ToolCallError(f"until: {text!r} is more than a year away", retryable=False)
    return max(instant.astimezone(UTC), now)


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
