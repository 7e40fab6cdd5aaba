"""The one way services open a connection pool to the event store."""

from __future__ import annotations

import asyncpg


class _NoResetConnection(asyncpg.Connection):
    """Skips the reset query asyncpg sends each time a connection goes back to the pool.

    That query (UNLISTEN, RESET ALL, CLOSE ALL, advisory unlock) is one more round trip per
    request; our code leaves no session state behind: locks are transaction-scoped, and
    listeners are removed by whoever added them (asyncpg still rolls back an open
    transaction and drops callbacks on release).
    """

    def get_reset_query(self) -> str:
        return ""


# Session settings for every pooled connection.
# - jit off: our statements are short (a lease, an upsert, a page of a read model), and the
#   planner's cost estimates grow with a table's dead rows, not its live ones. due_work churns
#   (each run inserts, updates and deletes its row), so between autovacuum passes (a minute
#   apart by default; never, on a server without autovacuum) the lease query's estimate
#   crossed jit_above_cost, and each lease then spent ~15 ms compiling: `bench compare`
#   rounds fell from ~4,500 to ~2,000 runs/s as a scratch database filled. No statement of
#   ours is long enough for JIT to repay its cost.
SESSION_SETTINGS = {"jit": "off"}


def open_pool(database_url: str, *, size: int, warm: int | None = None) -> asyncpg.Pool:
    """A pool of ``size`` connections, ``warm`` of them (default: all) opened up front, so the
    first requests after start do not pay for connecting."""
    return asyncpg.create_pool(
        database_url,
        min_size=size if warm is None else warm,
        max_size=size,
        connection_class=_NoResetConnection,
        server_settings=SESSION_SETTINGS,
    )
