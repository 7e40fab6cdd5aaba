"""Run reads (every step's input and output) and steering commands (cancel, retry, approve)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from domain.events import Event, RunQueued, run_stream
from domain.runs import RunStatus, decide_approval, decide_cancel, decide_retry
from projections.base import Connection
from services.application.context import Backend, Caller
from services.application.errors import NotFound
from services.application.paging import decode_position, encode_position
from services.application.principal import Principal
from services.store.events import (
    StoredEvent,
    StreamAppend,
    append_in_transaction,
    read_stream_stored,
)

RunStatusFilter = RunStatus
_COLUMNS = (
    "run_id, task_id, owner, status, trigger, attempt, priority, scheduled_for, run_at,"
    " queued_at, started_at, finished_at, worker, error, cancel_requested,"
    " steps::text AS steps, approval::text AS approval, queued::text AS queued,"
    " wait::text AS wait, rerun_of, reruns::text AS reruns"
)
_json = msgspec.json.Decoder()
_queued = msgspec.json.Decoder(RunQueued)


class StepView(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One step as recorded: its rendered input and output keep their JSON types."""

    id: str
    status: str
    tool: str | None = None
    input: Any = None
    output: Any = None
    error: str | None = None
    duration_ms: float | None = None
    attempt: int | None = None
    at: str | None = None
    condition: str | None = None  # why a skipped step was skipped
    continued: bool | None = None  # a failed step with on_error: continue
    cost: float | None = None  # what the call cost against budgets (when it cost anything)


class RunView(msgspec.Struct, frozen=True, kw_only=True):
    """A run and its steps, in the order they ended."""

    id: str
    task_id: str
    status: str
    trigger: str
    attempt: int
    priority: int
    scheduled_for: datetime
    run_at: datetime
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    worker: str | None
    error: str | None
    cancel_requested: bool
    approval: dict[str, Any] | None
    event: dict[str, Any] | None
    steps: list[StepView]
    # The pending or last wait (wait_for_event, sleep): step, topic, filter, until, status.
    wait: dict[str, Any] | None = None
    # The run this one re-runs, and the re-runs of this one.
    rerun_of: str | None = None
    reruns: list[str] = msgspec.field(default_factory=list)


class RunPage(msgspec.Struct, frozen=True):
    """A page of runs, newest first; pass ``next`` as ``cursor`` for the next page."""

    items: list[RunView]
    next: str | None


class Decision(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An approver's answer; ``approved_items`` approves only those (default: everything)."""

    comment: Annotated[str, msgspec.Meta(max_length=5_000)] | None = None
    approved_items: list[Any] | None = None


def view_of(row: Any) -> RunView:
    """A ``runs`` row (selected with this module's columns) as the API shows it."""
    return _view(row)


async def load_run(conn: Connection, principal: Principal, run_id: str) -> Any:
    """The caller's run's row (NotFound if it has none by that id)."""
    return await _load(conn, principal, run_id)


def _view(row: Any) -> RunView:
    steps = _json.decode(row["steps"])
    ordered = sorted(steps.items(), key=lambda item: (str(item[1].get("at", "")), item[0]))
    return RunView(
        id=row["run_id"],
        task_id=row["task_id"],
        status=row["status"],
        trigger=row["trigger"],
        attempt=row["attempt"],
        priority=row["priority"],
        scheduled_for=row["scheduled_for"],
        run_at=row["run_at"],
        queued_at=row["queued_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        worker=row["worker"],
        error=row["error"],
        cancel_requested=row["cancel_requested"],
        approval=_json.decode(row["approval"]) if row["approval"] else None,
        event=_json.decode(row["queued"]).get("event"),
        steps=[msgspec.convert({"id": step_id, **step}, StepView) for step_id, step in ordered],
        wait=_wait_view(row["wait"]),
        rerun_of=row["rerun_of"],
        reruns=_json.decode(row["reruns"]),
    )


def _wait_view(text: str | None) -> dict[str, Any] | None:
    """The wait as shown: what it waits for and until when (not the run's copied scope)."""
    if not text:
        return None
    wait = _json.decode(text)
    return {k: v for k, v in wait.items() if k not in ("scope", "consumed")}


def _owner(principal: Principal, first: int) -> tuple[str, list[Any]]:
    """Agents see the runs of their own tasks; admin sees every run."""
    if principal.allows("admin"):
        return "", []
    return f" AND owner = ${first}", [principal.actor]


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


async def _load(conn: Connection, principal: Principal, run_id: str) -> Any:
    if not _is_uuid(run_id):
        raise NotFound("no such run")
    owner, args = _owner(principal, 2)
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM runs WHERE run_id = $1{owner}",  # noqa: S608 - fixed SQL
        run_id,
        *args,
    )
    if row is None:
        raise NotFound(f"no run {run_id!r}")
    return row


def _cursor(view: RunView) -> str:
    return encode_position(view.queued_at, view.id)


async def find_runs(
    caller: Caller,
    backend: Backend,
    status: str | None,
    task_id: str | None,
    limit: int,
    cursor: str | None,
) -> RunPage:
    """The caller's runs (admin: all), newest first, filtered by status and task."""
    clauses: list[str] = ["true"]
    args: list[Any] = []
    for column, value in (("status", status), ("task_id", task_id)):
        if value is not None:
            args.append(value)
            clauses.append(f"{column} = ${len(args)}")
    if cursor is not None:
        args += list(decode_position(cursor))
        clauses.append(f"(queued_at, run_id) < (${len(args) - 1}, ${len(args)})")
    owner, owner_args = _owner(caller.principal, len(args) + 1)
    args += [*owner_args, limit]
    async with backend.pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM runs WHERE {' AND '.join(clauses)}{owner}"  # noqa: S608 - fixed columns
            f" ORDER BY queued_at DESC, run_id DESC LIMIT ${len(args)}",
            *args,
        )
    items = [_view(row) for row in rows]
    return RunPage(items, _cursor(items[-1]) if len(items) == limit else None)


async def read_run(caller: Caller, backend: Backend, run_id: str) -> RunView:
    """One run with every step's rendered input, output or error, and duration."""
    async with backend.pool.acquire() as conn:
        return _view(await _load(conn, caller.principal, run_id))


async def run_history(caller: Caller, backend: Backend, run_id: str) -> list[StoredEvent]:
    """The run's events (stream ``run-<id>``) in order."""
    async with backend.pool.acquire() as conn:
        await _load(conn, caller.principal, run_id)
        return await read_stream_stored(conn, run_stream(run_id))


Decide = Callable[[Any, datetime], list[Event]]
_LOCK_RUN = "SELECT 1 FROM due_work WHERE run_id = $1 FOR UPDATE"


async def _command(caller: Caller, backend: Backend, run_id: str, decide: Decide) -> RunView:
    """Decide on the run's current state and append, serialised with workers' appends."""
    async with backend.pool.acquire() as conn, conn.transaction():
        # The run's due_work row, locked before reading: no worker leases or records anything
        # for this run between decision and append (they lock the same row; see recorder.py).
        await conn.execute(_LOCK_RUN, run_id)
        row = await _load(conn, caller.principal, run_id)
        events = decide(row, datetime.now(UTC))
        if events:
            await append_in_transaction(
                conn,
                [StreamAppend(run_stream(run_id), events)],
                caller.meta(),
                backend.projections,
                fingerprint=caller.fingerprint,
            )
        view = _view(await _load(conn, caller.principal, run_id))
    if view.status == "queued":
        await backend.announce([run_id])
    return view


async def cancel_run(caller: Caller, backend: Backend, run_id: str) -> RunView:
    """Cancel a queued or parked run now; a running one stops at its next step boundary."""
    return await _command(
        caller,
        backend,
        run_id,
        lambda row, _: decide_cancel(run_id, row["status"], row["cancel_requested"]),
    )


async def retry_run(caller: Caller, backend: Backend, run_id: str) -> RunView:
    """Give a dead run one more attempt now; steps that succeeded are not run again."""
    return await _command(
        caller,
        backend,
        run_id,
        lambda row, now: decide_retry(
            row["status"], _queued.decode(row["queued"]), row["attempt"], now
        ),
    )


async def decide_run(
    caller: Caller, backend: Backend, run_id: str, approve: bool, data: Decision | None
) -> RunView:
    """Approve or reject the step the run waits at; it resumes."""
    body = data or Decision()
    return await _command(
        caller,
        backend,
        run_id,
        lambda row, _: decide_approval(
            row["run_id"],
            row["status"],
            _json.decode(row["approval"]) if row["approval"] else None,
            approve=approve,
            comment=body.comment,
            approved_items=body.approved_items,
        ),
    )
