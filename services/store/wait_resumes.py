"""Waiting runs an external event may resume, read in the publish transaction.

Read under the append lock that recording the events takes (services/store/publish.py), so a
run entering its wait either is seen here or sees these events in the log itself
(services/worker/waits.py).
"""

from __future__ import annotations

import msgspec

from domain.waits import Waiting
from projections.base import Connection

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
