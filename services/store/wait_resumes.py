"""Waiting runs an external event may resume, read in the publish transaction.

Publications hold ``WAITS_LOCK`` shared (they never wait for each other); a run entering a wait
holds it exclusively while it reads the log and records ``run.waiting``
(services/worker/waits.py). So a run entering its wait either is seen by a publication's
lookup here, or sees that publication's event in the log itself: never neither.
"""

from __future__ import annotations

import msgspec

from domain.waits import Waiting
from projections.base import Connection

WAITS_LOCK = 0x6F72_6477_6169_7473  # any fixed number; only publications and wait entries take it

# Runs waiting for an event on one of the topics (the wait's glob as a LIKE pattern, `_`
# escaped first; domain.waits checks the match again, with the filter and who published).
_WAITING = r"""
SELECT run_id, owner, wait::text AS wait FROM runs
WHERE status = 'waiting' AND wait->>'kind' = 'event'
  AND EXISTS (SELECT FROM unnest($1::text[]) AS e(topic)
              WHERE e.topic LIKE replace(replace(replace(wait->>'topic', '_', '\_'), '*', '%'),
                                         '?', '_'))
ORDER BY run_id
"""


async def waiting_runs(conn: Connection, topics: list[str]) -> list[Waiting]:
    """The runs waiting for an event on any of ``topics``."""
    rows = await conn.fetch(_WAITING, topics)
    return [Waiting(r["run_id"], r["owner"], msgspec.json.decode(r["wait"])) for r in rows]


async def hold_for_publication(conn: Connection) -> None:
    """Until commit, no run enters an event wait (publications do not wait for each other)."""
    await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", WAITS_LOCK)


async def hold_for_wait_entry(conn: Connection) -> None:
    """Until commit, no publication records an event: those under way have ended first."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", WAITS_LOCK)
