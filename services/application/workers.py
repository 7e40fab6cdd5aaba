"""The workers that reported in recently, with the leases each holds (admin)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from services.application.context import Backend
from services.health.presence import ALIVE_WITHIN_SECONDS

_WORKERS = """
SELECT w.name, w.host, w.pid, w.concurrency, w.running, w.started_at, w.last_seen,
       w.last_seen >= now() - $1::float8 * interval '1 second' AS alive,
       coalesce(array_agg(d.run_id ORDER BY d.run_id) FILTER (WHERE d.run_id IS NOT NULL),
                '{}') AS runs,
       min(d.locked_until) AS first_lease_ends
FROM worker_presence w
LEFT JOIN due_work d ON d.locked_by = w.name AND d.locked_until >= now()
GROUP BY w.name
ORDER BY w.started_at, w.name
"""


class WorkerView(msgspec.Struct, frozen=True, kw_only=True):
    """One worker: where it runs, whether it is alive, and the runs it holds leases on."""

    name: str
    host: str
    pid: int
    concurrency: int
    running: int
    started_at: datetime
    last_seen: datetime
    alive: bool
    leased_runs: list[str]
    first_lease_ends: datetime | None


class WorkerList(msgspec.Struct, frozen=True):
    """Workers seen in the last day, oldest first."""

    items: list[WorkerView]


async def list_workers(backend: Backend) -> WorkerList:
    """Every worker that reported in the last day; ``alive`` if seen within the last 30 s."""
    rows = await backend.pool.fetch(_WORKERS, ALIVE_WITHIN_SECONDS)
    return WorkerList(
        [
            WorkerView(
                name=r["name"],
                host=r["host"],
                pid=r["pid"],
                concurrency=r["concurrency"],
                running=r["running"],
                started_at=r["started_at"],
                last_seen=r["last_seen"],
                alive=r["alive"],
                leased_runs=list(r["runs"]),
                first_lease_ends=r["first_lease_ends"],
            )
            for r in rows
        ]
    )
