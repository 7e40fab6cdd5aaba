"""Worker presence: who is alive (GET /workers, /health, ordinaut_workers_alive)."""

from __future__ import annotations

import os
import socket

from projections.base import Connection

# A worker reports every PRESENCE_SECONDS; missing three reports in a row means gone.
PRESENCE_SECONDS = 10.0
ALIVE_WITHIN_SECONDS = 30.0

_REPORT = """
INSERT INTO worker_presence (name, host, pid, concurrency, running, started_at, last_seen)
VALUES ($1, $2, $3, $4, $5, now(), now())
ON CONFLICT (name) DO UPDATE SET running = excluded.running, last_seen = excluded.last_seen
"""
# Long-gone workers are forgotten, so the table stays the size of the fleet.
_FORGET = "DELETE FROM worker_presence WHERE last_seen < now() - interval '1 day'"


async def report(conn: Connection, name: str, concurrency: int, running: int) -> None:
    """This worker is alive and runs ``running`` runs."""
    await conn.execute(_REPORT, name, socket.gethostname(), os.getpid(), concurrency, running)
    await conn.execute(_FORGET)


async def leave(conn: Connection, name: str) -> None:
    """This worker stopped cleanly."""
    await conn.execute("DELETE FROM worker_presence WHERE name = $1", name)


async def alive(conn: Connection) -> int:
    """How many workers reported recently."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM worker_presence"
        " WHERE last_seen >= now() - $1::float8 * interval '1 second'",
        ALIVE_WITHIN_SECONDS,
    )
    return count
