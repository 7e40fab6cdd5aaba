"""What holds the log's visibility horizon back: the oldest transaction that has written.

Readers of the log only take events below the horizon (services/store/order.py). A
transaction of this database that stays open after writing anything — an idle session in a
transaction, a slow migration — holds the horizon at its id, and readers wait for it rather
than skip anything. This names it, for /health and /metrics. Other databases' transactions
hold nothing back (order.HORIZON leaves them out), so they are not named.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from projections.base import Connection

# backend_xid is set only once a transaction has written: read-only ones hold nothing back.
_OLDEST = """
SELECT pid, datname, state, xact_start, query_start, left(query, 200) AS query,
       extract(epoch FROM clock_timestamp() - xact_start)::float8 AS age_seconds
FROM pg_stat_activity
WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
  AND (datname = current_database() OR datname IS NULL)
ORDER BY age(backend_xid) DESC
LIMIT 1
"""


class HorizonHolder(msgspec.Struct, frozen=True, kw_only=True):
    """The open transaction with the oldest id: every reader of the log waits for it."""

    pid: int
    database: str | None
    state: str | None
    age_seconds: float
    xact_start: datetime | None
    query_start: datetime | None
    query: str | None

    def describe(self) -> str:
        """One line for an operator."""
        started = self.query_start.isoformat() if self.query_start else "?"
        return (
            f"pid {self.pid} ({self.state or '?'}, database {self.database or '?'}) has held"
            f" the event log's read horizon for {self.age_seconds:.1f} s; its last query"
            f" started at {started}: {(self.query or '').strip()[:120]!r}"
        )


async def oldest_writer(conn: Connection) -> HorizonHolder | None:
    """The open transaction holding the horizon, if any."""
    row = await conn.fetchrow(_OLDEST)
    if row is None:
        return None
    return HorizonHolder(
        pid=row["pid"],
        database=row["datname"],
        state=row["state"],
        age_seconds=float(row["age_seconds"] or 0.0),
        xact_start=row["xact_start"],
        query_start=row["query_start"],
        query=row["query"],
    )
