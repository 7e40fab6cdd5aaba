"""Reads of the task model and the idempotent-command bookkeeping the task routes use."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from domain.events import TaskCanceled, TaskDefinition, TaskDeleted, run_stream
from domain.runs import ended_with_task
from domain.tasks import TaskState
from projections.base import Connection
from services.application.context import Answer
from services.application.errors import NotFound
from services.application.paging import decode_position, encode_position
from services.application.principal import Principal
from services.application.task_bodies import LastRun, TaskView
from services.store.errors import IdempotencyKeyReused
from services.store.events import StreamAppend

_definition = msgspec.json.Decoder(TaskDefinition)
_last_run = msgspec.json.Decoder(LastRun)
# The latest run rides along as one JSON column: one index probe on runs_task per task.
_COLUMNS = """
id, status, version, next_run_at, created_by, created_at, updated_at,
definition::text AS definition,
(SELECT json_build_object('run_id', r.run_id, 'status', r.status, 'trigger', r.trigger,
                          'attempt', r.attempt, 'scheduled_for', r.scheduled_for,
                          'started_at', r.started_at, 'finished_at', r.finished_at,
                          'error', r.error)::text
 FROM runs r WHERE r.task_id = task.id ORDER BY r.queued_at DESC LIMIT 1) AS last_run
"""


def _view(row: Any) -> TaskView:
    return TaskView(
        id=row["id"],
        status=row["status"],
        version=row["version"],
        next_run_at=row["next_run_at"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        definition=msgspec.Raw(row["definition"].encode()),
        last_run=_last_run.decode(row["last_run"]) if row["last_run"] else None,
    )


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _owner_clause(principal: Principal, first_param: int) -> tuple[str, list[Any]]:
    """Agents see their own tasks; admin sees every task."""
    if principal.allows("admin"):
        return "", []
    return f" AND created_by = ${first_param}", [principal.actor]


async def load_task(
    conn: Connection, principal: Principal, task_id: str
) -> tuple[TaskView, TaskState]:
    """The live task, or NotFound (also for another agent's task, so ids reveal nothing)."""
    if not _is_uuid(task_id):
        raise NotFound("no such task")
    owner, args = _owner_clause(principal, 2)
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM task WHERE id = $1 AND NOT deleted{owner}",  # noqa: S608 - fixed SQL, values are parameters
        task_id,
        *args,
    )
    if row is None:
        raise NotFound(f"no task {task_id!r}")
    state = TaskState(
        row["id"], _definition.decode(row["definition"]), row["status"], row["next_run_at"]
    )
    return _view(row), state


async def lock_task(conn: Connection, task_id: str) -> None:
    """Lock the task's row until the transaction ends (an id that cannot be a task's locks
    nothing: load_task refuses it as not found)."""
    if _is_uuid(task_id):
        await conn.execute("SELECT 1 FROM task WHERE id = $1 FOR UPDATE", task_id)


# The work rows before the runs are read, as every writer of a run takes them first (leases, the
# recorder, run commands): a leaser holding one finishes before the read, none starts after it.
_LOCK_PARKED_WORK = (
    "SELECT run_id FROM due_work WHERE task_id = $1 AND parked ORDER BY run_id FOR UPDATE"
)
_PARKED = """
SELECT run_id FROM runs WHERE task_id = $1 AND status IN ('waiting', 'awaiting_approval')
ORDER BY run_id
"""


async def parked_runs(conn: Connection, task_id: str) -> list[str]:
    """The task's runs parked for an event, a sleep or an approval, their work rows locked.
    Call with the task's row locked (lock_task): a worker parks a run only with its task's
    row share-locked (services/worker/recorder.py), so no run parks unseen meanwhile."""
    await conn.execute(_LOCK_PARKED_WORK, task_id)
    return [row["run_id"] for row in await conn.fetch(_PARKED, task_id)]


async def runs_ending_with_tasks(
    conn: Connection, appends: Sequence[StreamAppend]
) -> list[StreamAppend]:
    """What ends the parked runs of the tasks these appends cancel or delete: a parked run
    holds no lease, so nothing else would settle it (one waiting without a deadline, never).
    Call with those tasks' rows locked."""
    deleting: dict[str, bool] = {}
    for append in appends:
        for event in append.events:
            if isinstance(event, TaskCanceled | TaskDeleted):
                deleting[event.task_id] = isinstance(event, TaskDeleted)
    return [
        StreamAppend(run_stream(run_id), [ended_with_task(run_id, deleted=deleted)])
        for task_id, deleted in deleting.items()
        for run_id in await parked_runs(conn, task_id)
    ]


async def task_id_by_key(conn: Connection, actor: str, key: str) -> str | None:
    """The caller's live task with this key, if any."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT id FROM task WHERE created_by = $1 AND key = $2 AND NOT deleted", actor, key
    )


_CLAIM_KEYS = """
SELECT pg_advisory_xact_lock(hashtextextended('ordinaut-task-key:' || $1 || '/' || k, 0))
FROM (SELECT DISTINCT k FROM unnest($2::text[]) AS k ORDER BY k) AS keys
"""


async def claim_task_keys(conn: Connection, owner: str, keys: list[str]) -> None:
    """Hold ``owner``'s task ``keys`` until the transaction ends.

    Creating by key reads whether a task has the key, then creates one or updates it. Two
    creators that both read "none" would both create, and the unique index (task_owner_key)
    would refuse the later one, although its task is the one the first just made. Holding the
    key from before the read until commit makes the second read the first one's task. Taken
    in one sorted order, so two claimers never deadlock; a hash collision only makes two keys
    take turns.
    """
    if keys:
        await conn.execute(_CLAIM_KEYS, owner, keys)


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(created_at, id) from an opaque cursor; a forged one is refused naming `cursor`."""
    return decode_position(cursor)


def _literal(text: str) -> str:
    """``text`` as a LIKE pattern matching only itself (backslash is LIKE's escape)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def encode_cursor(view: TaskView) -> str:
    """The opaque cursor after ``view``."""
    return encode_position(view.created_at, view.id)


async def list_tasks(
    conn: Connection,
    principal: Principal,
    filters: dict[str, Any],
    limit: int,
    after: tuple[datetime, str] | None,
) -> list[TaskView]:
    """Live tasks matching ``filters``, oldest first, stable across pages."""
    clauses, args = ["NOT deleted"], []
    for column, value in filters.items():
        if value is not None:
            # A title search matches the text itself: its % and _ are not wildcards.
            args.append(f"%{_literal(value)}%" if column == "title" else value)
            op = "ILIKE" if column == "title" else "="
            clauses.append(f"{column} {op} ${len(args)}")
    if after is not None:
        args += list(after)
        clauses.append(f"(created_at, id) > (${len(args) - 1}, ${len(args)})")
    owner, owner_args = _owner_clause(principal, len(args) + 1)
    args += [*owner_args, limit]
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM task WHERE {' AND '.join(clauses)}{owner}"  # noqa: S608 - fixed columns
        f" ORDER BY created_at, id LIMIT ${len(args)}",
        *args,
    )
    return [_view(row) for row in rows]


# command_log.response_status (a SMALLINT) keeps the code the first releases wrote there, so
# answers remembered before the answer had a name still replay the same.
_STORED_CODE = {Answer.DONE: 200, Answer.CREATED: 201, Answer.ACCEPTED: 202, Answer.DELETED: 204}
_ANSWER_OF = {code: answer for answer, code in _STORED_CODE.items()}


async def replay(
    conn: Connection, actor: str, key: str, fingerprint: str
) -> tuple[Answer, msgspec.Raw] | None:
    """The stored answer to an earlier command with this key, if it finished."""
    row = await conn.fetchrow(
        "SELECT fingerprint, response_status, response::text AS response FROM command_log"
        " WHERE actor = $1 AND idempotency_key = $2",
        actor,
        key,
    )
    if row is None or row["response"] is None:
        return None
    if row["fingerprint"] != fingerprint:
        raise IdempotencyKeyReused(key)
    return _ANSWER_OF[row["response_status"]], msgspec.Raw(row["response"].encode())


async def remember(conn: Connection, actor: str, key: str, answer: Answer, body: object) -> None:
    """Keep the answer so a repeat of the command gets it verbatim."""
    await conn.execute(
        "UPDATE command_log SET response_status = $3, response = $4::jsonb"
        " WHERE actor = $1 AND idempotency_key = $2",
        actor,
        key,
        _STORED_CODE[answer],
        msgspec.json.encode(body).decode(),
    )
