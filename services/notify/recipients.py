"""Who an event concerns: the agent owning its run (or task), if it has a webhook."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from projections.base import Connection

# A run's owner is the agent whose task queued it; a task's is the agent that created it.
_RECIPIENT = """
SELECT id, webhook_url, notify_events FROM agent
WHERE webhook_url IS NOT NULL
  AND id = coalesce((SELECT owner FROM runs WHERE run_id = $1),
                    (SELECT created_by FROM task WHERE id = $2))
"""


@dataclass(frozen=True)
class Recipient:
    """An agent to notify, and the event types it chose (None = the defaults)."""

    agent_id: str
    url: str
    notify_events: tuple[str, ...] | None


async def recipient_of(conn: Connection, data: dict[str, Any]) -> Recipient | None:
    """The agent to tell about an event with this data, or None."""
    run_id, task_id = data.get("run_id"), data.get("task_id")
    if not isinstance(run_id, str) and not isinstance(task_id, str):
        return None
    row = await conn.fetchrow(
        _RECIPIENT,
        run_id if isinstance(run_id, str) else None,
        task_id if isinstance(task_id, str) else None,
    )
    if row is None:
        return None
    chosen = row["notify_events"]
    return Recipient(row["id"], row["webhook_url"], None if chosen is None else tuple(chosen))
