"""The few reads only the dashboard makes (counts, the next firings, names for ids)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import redis.asyncio as redis

from domain.events import TaskDefinition
from services.application.principal import Principal
from services.application.tasks import upcoming
from services.channels.ingest import DEAD_STREAM

_definition = msgspec.json.Decoder(TaskDefinition)


def _owned(principal: Principal, column: str) -> tuple[str, list[Any]]:
    """Agents see their own tasks and runs; the admin sees all (as the API's reads do)."""
    return ("", []) if principal.allows("admin") else (f" AND {column} = $1", [principal.actor])


async def task_counts(pool: Any, principal: Principal) -> dict[str, int]:
    """Live tasks by status."""
    owner, args = _owned(principal, "created_by")
    rows = await pool.fetch(
        f"SELECT status, count(*) AS n FROM task WHERE NOT deleted{owner} GROUP BY status",  # noqa: S608 - fixed SQL
        *args,
    )
    return {row["status"]: row["n"] for row in rows}


async def run_counts(pool: Any, principal: Principal) -> dict[str, int]:
    """Runs queued in the last 24 hours, by status."""
    owner, args = _owned(principal, "owner")
    rows = await pool.fetch(
        "SELECT status, count(*) AS n FROM runs"  # noqa: S608 - fixed SQL
        f" WHERE queued_at >= now() - interval '24 hours'{owner} GROUP BY status",
        *args,
    )
    return {row["status"]: row["n"] for row in rows}


@dataclass(frozen=True)
class Firing:
    """One upcoming occurrence of a task."""

    task_id: str
    title: str
    timezone: str
    at: datetime


async def next_firings(pool: Any, principal: Principal, count: int) -> list[Firing]:
    """The next ``count`` firings across all tasks: a task due later than the count-th
    earliest task cannot fire before it, so only those tasks' schedules are expanded."""
    owner, args = _owned(principal, "created_by")
    rows = await pool.fetch(
        "SELECT id, title, definition::text AS definition, next_run_at FROM task"  # noqa: S608 - fixed SQL
        f" WHERE status = 'active' AND NOT deleted AND next_run_at IS NOT NULL{owner}"
        f" ORDER BY next_run_at LIMIT {int(count)}",
        *args,
    )
    found = []
    for row in rows:
        definition = _definition.decode(row["definition"])
        for at in upcoming(definition, row["next_run_at"], count):
            found.append(Firing(row["id"], row["title"], definition.timezone, at))
    return sorted(found, key=lambda firing: firing.at)[:count]


@dataclass(frozen=True)
class TaskName:
    """What a run list shows of its task."""

    title: str
    timezone: str


async def task_names(pool: Any, task_ids: set[str]) -> dict[str, TaskName]:
    """Titles and zones of these tasks (deleted ones too: their runs stay visible)."""
    if not task_ids:
        return {}
    rows = await pool.fetch(
        "SELECT id, title, timezone FROM task WHERE id = ANY($1::text[])", list(task_ids)
    )
    return {row["id"]: TaskName(row["title"], row["timezone"]) for row in rows}


@dataclass(frozen=True)
class DeadLetter:
    """An ingest entry that could not be recorded."""

    entry_id: str
    fields: dict[str, str]


async def dead_letters(client: redis.Redis, count: int) -> list[DeadLetter] | None:
    """The latest entries of the ingest dead-letter stream; None if Redis does not answer."""
    try:
        entries: Any = await asyncio.wait_for(client.xrevrange(DEAD_STREAM, count=count), 1.0)
    except Exception:  # Redis away: the overview says so instead of failing
        return None
    return [
        DeadLetter(_text(entry_id), {_text(k): _text(v) for k, v in fields.items()})
        for entry_id, fields in entries
    ]


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


async def dead_count(pool: Any, principal: Principal) -> int:
    """How many of the caller's runs are dead."""
    owner, args = _owned(principal, "owner")
    count = await pool.fetchval(
        f"SELECT count(*) FROM runs WHERE status = 'dead'{owner}",  # noqa: S608 - fixed SQL
        *args,
    )
    return int(count)
