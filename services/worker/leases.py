"""Leasing due work: who runs what is decided here, in Postgres, one batch per transaction.

Workers lease concurrently: the due_work rows a lease takes (FOR UPDATE SKIP LOCKED) are the
lease, and other leasers skip them rather than wait. Only what reads other runs' rows to
decide serialises, and only per key: the concurrency-key count and the dedupe lookup run under
that key's advisory lock (``_lock_keys``), so each sees every lease of its key committed
before it (READ COMMITTED takes a fresh snapshot per statement, after the lock was granted).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec

from domain.envelope import EventMeta
from domain.events import (
    ApprovalGranted,
    ApprovalRejected,
    Event,
    QuietWindow,
    RunCanceled,
    RunDeduplicated,
    RunQueued,
    RunResumed,
    RunStarted,
    RunWaitTimedOut,
    TaskDefinition,
    run_stream,
)
from domain.runs import Failure, decide_failure, ended_with_task
from domain.waits import deadline_passed
from projections.base import Connection, ProjectionSet
from services.pipeline.run import LeasedRun, OwnerLimits
from services.runtime.metrics import RUNS
from services.store.events import StreamAppend, append_in_transaction

# Ready work by urgency, skipping rows other leasers hold and keys already at their limit,
# with what executing or settling each needs (its run, task and owner's limits) in the same
# round trip. Only the due_work rows are locked (OF d): that row is the lease; the run and task
# rows are read as committed, as a separate read after the lock would read them.
_CANDIDATES = """
SELECT d.run_id, d.attempt, d.parked, d.locked_by, d.concurrency_key, d.max_concurrency,
       d.dedupe_key, d.dedupe_window_seconds, d.lapses, statement_timestamp() AS now,
       r.task_id, r.trigger, r.scheduled_for, r.started_at,
       r.cancel_requested, r.steps::text AS steps, r.queued::text AS queued,
       r.approval::text AS approval, r.wait::text AS wait, r.status AS run_status,
       t.definition::text AS definition, t.title, t.status AS task_status, t.deleted,
       l.budget_per_day AS owner_budget, l.quiet_hours::text AS owner_quiet_hours,
       l.timezone AS owner_timezone
FROM due_work d
JOIN runs r ON r.run_id = d.run_id
JOIN task t ON t.id = r.task_id
LEFT JOIN agent_limits l ON l.agent_id = r.owner
WHERE d.run_at <= statement_timestamp()
  AND (d.locked_until IS NULL OR d.locked_until < statement_timestamp())
  AND (d.concurrency_key IS NULL OR d.parked OR d.max_concurrency > (
        SELECT count(*) FROM due_work h
        WHERE h.concurrency_key = d.concurrency_key AND h.locked_until >= statement_timestamp()))
ORDER BY d.priority, d.run_at
LIMIT $1
FOR UPDATE OF d SKIP LOCKED
"""
_HOLDERS = """
SELECT concurrency_key, count(*) AS held FROM due_work
WHERE concurrency_key = ANY($1::text[]) AND locked_until >= statement_timestamp()
GROUP BY concurrency_key
"""
_RECENT_DUPLICATE = """
SELECT run_id FROM runs
WHERE dedupe_key = $1 AND run_id <> $2 AND started_at >= $3
  AND status NOT IN ('deduplicated', 'canceled')
LIMIT 1
"""
_EARLIEST = """
SELECT extract(epoch FROM min(run_at) - clock_timestamp()) FROM due_work
WHERE locked_until IS NULL OR locked_until < clock_timestamp()
"""

# A run's lease may lapse this many times in one attempt (workers killed, hung, cut off from
# the database); then the attempt fails and the run's retry policy decides what comes next.
MAX_LAPSES = 3

_definition = msgspec.json.Decoder(TaskDefinition)
_queued = msgspec.json.Decoder(RunQueued)
_json = msgspec.json.Decoder()
_windows = msgspec.json.Decoder(tuple[QuietWindow, ...])


@dataclass
class _Candidate:
    run_id: str
    attempt: int
    parked: bool
    resumed: bool
    concurrency_key: str | None
    max_concurrency: int
    dedupe_key: str | None
    dedupe_window_seconds: int | None
    lapses: int = 0


async def lease(
    conn: Connection,
    projections: ProjectionSet,
    worker: str,
    *,
    limit: int,
    lease_seconds: float,
) -> tuple[list[LeasedRun], list[str]]:
    """Lease up to ``limit`` runs (appending ``run.started`` for each), in one transaction.

    Also settles what needs no worker: duplicates inside their window, runs of canceled or
    deleted tasks, and approvals whose deadline passed. Returns the leased runs and the ids
    of runs those settlements made ready again (to announce).
    """
    async with conn.transaction():
        # FOR UPDATE SKIP LOCKED alone keeps leasers apart: each takes rows no other holds.
        rows = await conn.fetch(_CANDIDATES, limit)
        if not rows:
            return [], []
        await _lock_keys(conn, rows)
        now: datetime = rows[0]["now"]
        candidates = [
            _Candidate(
                r["run_id"],
                r["attempt"],
                r["parked"],
                r["locked_by"] is not None,
                r["concurrency_key"],
                r["max_concurrency"],
                r["dedupe_key"],
                r["dedupe_window_seconds"],
                r["lapses"],
            )
            for r in rows
        ]
        details = {r["run_id"]: r for r in rows}
        appends: list[StreamAppend] = []
        leased: list[LeasedRun] = []
        readied: list[str] = []
        admitted = await _admit(conn, candidates, now)
        lease_until = now + timedelta(seconds=lease_seconds)
        starting: dict[str, str] = {}  # dedupe key -> run leased in this batch
        for candidate in candidates:
            row = details.get(candidate.run_id)
            if row is None:
                continue
            settled = await _settle(conn, candidate, row, now, starting)
            if settled is not None:
                appends.append(StreamAppend(run_stream(candidate.run_id), [settled]))
                if isinstance(
                    settled, ApprovalGranted | ApprovalRejected | RunResumed | RunWaitTimedOut
                ):
                    readied.append(candidate.run_id)
                continue
            if candidate.run_id not in admitted:
                continue
            started = RunStarted(
                run_id=candidate.run_id,
                attempt=candidate.attempt,
                worker=worker,
                lease_until=lease_until,
                resumed=candidate.resumed,
            )
            appends.append(StreamAppend(run_stream(candidate.run_id), [started]))
            leased.append(_leased(row, candidate.attempt, lease_until))
            if candidate.dedupe_key:
                starting.setdefault(candidate.dedupe_key, candidate.run_id)
        if appends:
            await append_in_transaction(
                conn, appends, EventMeta(actor=worker, correlation_id=worker), projections
            )
    duplicates = sum(isinstance(e, RunDeduplicated) for a in appends for e in a.events)
    if duplicates:
        RUNS.labels("deduplicated").inc(duplicates)
    return leased, readied


# Bounded: a key held this long by another leaser fails this lease (retried), never hangs it.
_KEY_LOCK_TIMEOUT = "SELECT set_config('lock_timeout', '5s', true)"
_LOCK_KEYS = """
SELECT pg_advisory_xact_lock(hashtextextended(k, 0))
FROM (SELECT DISTINCT k FROM unnest($1::text[]) AS k ORDER BY k) AS keys
"""


async def _lock_keys(conn: Connection, rows: list[Any]) -> None:
    """Serialise leasers per concurrency key and per dedupe key (not globally).

    Admission counts a key's running holders and dedupe looks for a recent run with the key:
    read-then-decide on rows of other runs, which two leasers holding different rows of one
    key would otherwise both pass. Holding the key's lock until commit makes the second one
    count the first one's lease. Taken in one sorted order, so leasers never deadlock on them.
    """
    keys = [f"ordinaut-concurrency:{r['concurrency_key']}" for r in rows if r["concurrency_key"]]
    keys += [f"ordinaut-dedupe:{r['dedupe_key']}" for r in rows if r["dedupe_key"]]
    if keys:
        await conn.execute(_KEY_LOCK_TIMEOUT)
        await conn.execute(_LOCK_KEYS, keys)


async def _admit(conn: Connection, candidates: list[_Candidate], now: datetime) -> set[str]:
    """The candidates a concurrency key lets start now (a key's slots fill in lease order)."""
    keys = sorted({c.concurrency_key for c in candidates if c.concurrency_key and not c.parked})
    held = (
        {r["concurrency_key"]: r["held"] for r in await conn.fetch(_HOLDERS, keys)} if keys else {}
    )
    admitted: set[str] = set()
    for c in candidates:
        if c.parked:
            continue
        if c.concurrency_key is not None:
            if held.get(c.concurrency_key, 0) >= c.max_concurrency:
                continue
            held[c.concurrency_key] = held.get(c.concurrency_key, 0) + 1
        admitted.add(c.run_id)
    return admitted


async def _settle(
    conn: Connection, candidate: _Candidate, row: Any, now: datetime, starting: dict[str, str]
) -> Event | None:
    """The event that settles a candidate without running it, if one does."""
    if row["task_status"] == "canceled" or row["deleted"]:
        return ended_with_task(candidate.run_id, deleted=row["deleted"])
    if candidate.parked:
        if row["run_status"] == "waiting" and row["wait"]:  # a wait's deadline came
            return deadline_passed({**_json.decode(row["wait"]), "run_id": candidate.run_id})
        return _approval_timeout(row)
    if row["cancel_requested"]:
        return RunCanceled(run_id=candidate.run_id, reason="canceled on request")
    if candidate.resumed and candidate.lapses + 1 >= MAX_LAPSES:
        return _lapsed(candidate, row, now)
    if candidate.dedupe_key and row["started_at"] is None and candidate.dedupe_window_seconds:
        since = now - timedelta(seconds=candidate.dedupe_window_seconds)
        duplicate = starting.get(candidate.dedupe_key) or await conn.fetchval(
            _RECENT_DUPLICATE, candidate.dedupe_key, candidate.run_id, since
        )
        if duplicate is not None:
            # due_work holds the owner-scoped key (domain.ownership); the event names the
            # key as the task gave it.
            key = _queued.decode(row["queued"]).dedupe_key or candidate.dedupe_key
            return RunDeduplicated(run_id=candidate.run_id, dedupe_key=key, duplicate_of=duplicate)
    return None


def _lapsed(candidate: _Candidate, row: Any, now: datetime) -> Event:
    """The attempt's end once its lease lapsed MAX_LAPSES times: whatever keeps killing its
    worker (or losing its records) counts against the run's retries like any failure."""
    error = (
        f"the run's lease lapsed {candidate.lapses + 1} times in this attempt without it "
        "ending (its worker stopped, hung or lost the database)"
    )
    failure = Failure(error, retryable=True)
    return decide_failure(
        candidate.run_id, candidate.attempt, failure, _definition.decode(row["definition"]), now
    )


def _approval_timeout(row: Any) -> Event:
    approval = _json.decode(row["approval"]) if row["approval"] else {}
    step_id = approval.get("step_id", "")
    if approval.get("on_timeout") == "approve":
        return ApprovalGranted(
            run_id=row["run_id"], step_id=step_id, approved_items=approval.get("data"), expired=True
        )
    return ApprovalRejected(run_id=row["run_id"], step_id=step_id, expired=True)


def _leased(row: Any, attempt: int, lease_until: datetime) -> LeasedRun:
    return LeasedRun(
        run_id=row["run_id"],
        task_id=row["task_id"],
        task_title=row["title"],
        attempt=attempt,
        trigger=row["trigger"],
        scheduled_for=row["scheduled_for"],
        definition=_definition.decode(row["definition"]),
        queued=_queued.decode(row["queued"]),
        steps=_json.decode(row["steps"]),
        lease_until=lease_until,
        owner_limits=_owner_limits(row),
    )


def _owner_limits(row: Any) -> OwnerLimits | None:
    if row["owner_timezone"] is None:  # the owner has no limits set (or is the admin)
        return None
    return OwnerLimits(
        budget_per_day=row["owner_budget"],
        quiet_hours=_windows.decode(row["owner_quiet_hours"]),
        timezone=row["owner_timezone"],
    )


async def seconds_until_ready(conn: Connection) -> float | None:
    """How long until the earliest unleased work is due (None: there is none)."""
    seconds = await conn.fetchval(_EARLIEST)
    return None if seconds is None else float(seconds)


async def extend(conn: Connection, worker: str, run_ids: list[str], lease_seconds: float) -> None:
    """Heartbeat: push out the leases this worker still holds."""
    await conn.execute(
        "UPDATE due_work SET locked_until = clock_timestamp() + $3::float8 * interval '1 second'"
        " WHERE run_id = ANY($1::text[]) AND locked_by = $2",
        run_ids,
        worker,
        lease_seconds,
    )


async def cancel_requested(conn: Connection, run_ids: list[str]) -> list[str]:
    """Which of these runs someone asked to cancel."""
    rows = await conn.fetch(
        "SELECT run_id FROM runs WHERE run_id = ANY($1::text[]) AND cancel_requested", run_ids
    )
    return [row["run_id"] for row in rows]


async def release(conn: Connection, worker: str) -> None:
    """Give back every lease this worker holds (shutdown), so others can start at once."""
    await conn.execute(
        "UPDATE due_work SET locked_by = NULL, locked_until = NULL WHERE locked_by = $1", worker
    )
