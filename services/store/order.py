"""The log's one global order, and the cursor readers keep in it.

Design (issue 20), chosen among the known ones:
- one lock for every append (the ``eventsourcing`` library's recorder, and this store until
  now): exact, but every writer in every process queues on it; measured here it capped
  single-event commands at ~830/s with 16 appenders against 6,000-8,000 pgbench transactions/s.
- a lock per category (Message DB): still serialises writers of one category, and a reader of
  all categories still needs a global order.
- a high-water mark that skips gaps after a timeout (Marten's async daemon): fast, but an event
  whose transaction outlives the timeout is skipped for ever. Not exact, so not acceptable.
- the transaction-id visibility horizon (Emmett; "ordering in Postgres outbox", O. Dudycz):
  chosen. Each row stores the id of the transaction that wrote it (``txid``, xid8). Readers take
  only rows with ``txid`` below the horizon (``HORIZON``: ``pg_snapshot_xmin`` of the current
  snapshot, not counting other databases' transactions): every transaction of this database
  below it has ended, so no row can still appear below it. They read in ``(txid,
  position)`` order, so each later read continues strictly after everything read before:
  exactly once, never an aborted row, an order that never changes once read, and no write
  waits for another. The price: a transaction of this database that stays open once it has
  written something holds the horizon, and readers wait for it; services/store/horizon.py
  names it in ``/health`` and a metric instead of letting readers stall silently. Transactions
  of the server's other databases are left out of the horizon (see ``HORIZON``): they cannot
  write this log.

A cursor is the pair ``(txid, position)`` of the last event read. Its text form is the id the
relay gives the event in the Redis stream, so one cursor works everywhere:
- events written before this order existed have ``txid`` 0 and keep their old ids
  ``<position>-0``;
- later events get ``<ID_BASE + txid>-<position>``. ``ID_BASE`` (2**40) is above any position
  an existing log reached, so new ids are strictly greater than the ids already in a stream
  after the upgrade, and within the new part they grow in ``(txid, position)`` order.
A bare integer is the old position cursor: it still works (see ``events.cursor_at``).
"""

from __future__ import annotations

import re
from typing import NamedTuple

ID_BASE = 1 << 40
# The columns' ranges (position BIGINT, txid xid8): a larger number names no place in the log.
MAX_POSITION = (1 << 63) - 1
MAX_TXID = (1 << 64) - 1
_ENTRY_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")
_POSITION = re.compile(r"^\d{1,19}$")

# The horizon: rows of transactions below it are final (committed and visible, or aborted).
# The oldest transaction still open in the statement's snapshot, leaving out those known to
# be another database's (a session's or a prepared transaction's database never changes, and
# no other database can write this one's log), else the snapshot's xmax. Only a transaction
# shown to be elsewhere is left out: one that ended after the snapshot (so is no longer
# listed) or that the role may not see still holds the horizon, as
# pg_snapshot_xmin(pg_current_snapshot()) would. So a long transaction in another database of
# the server (another application's, a test's CREATE or DROP DATABASE) no longer holds this
# log's readers back. Uncorrelated: evaluated once per statement.
HORIZON = """(
    SELECT coalesce(min(x.id), pg_snapshot_xmax(pg_current_snapshot()))
    FROM pg_snapshot_xip(pg_current_snapshot()) AS x(id)
    WHERE NOT EXISTS (
        SELECT FROM pg_stat_activity a
        WHERE a.backend_xid = x.id::xid
          AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database()))
      AND NOT EXISTS (
        SELECT FROM pg_prepared_xacts p
        WHERE p.transaction = x.id::xid AND p.database <> current_database())
)"""


class Cursor(NamedTuple):
    """Where a reader is in the log: the last event read (``START`` before the first)."""

    txid: int
    position: int

    @property
    def entry_id(self) -> str:
        """The Redis stream entry id of this event (also the cursor's text form)."""
        if self.txid == 0:
            return f"{self.position}-0"
        return f"{ID_BASE + self.txid}-{self.position}"

    @classmethod
    def from_entry_id(cls, entry_id: bytes | str) -> Cursor:
        """The cursor an entry id (or cursor text) stands for; ValueError if it is not one."""
        text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        match = _ENTRY_ID.match(text)
        if match is None:
            raise ValueError(f"{text[:60]!r} is not a cursor (expected <number>-<number>)")
        high, low = int(match[1]), int(match[2])
        if low == 0:  # written before the order existed: <position>-0
            return cls(0, _position(high, text))
        if high <= ID_BASE or high - ID_BASE > MAX_TXID:
            raise ValueError(f"{text[:60]!r} is not a cursor of this log")
        return cls(high - ID_BASE, _position(low, text))


START = Cursor(0, 0)


def _position(number: int, text: str) -> int:
    if number > MAX_POSITION:
        raise ValueError(f"{text[:60]!r} is not a cursor of this log (its position is too large)")
    return number


def is_position(text: str) -> bool:
    """Whether ``text`` is an old position cursor (a bare non-negative integer)."""
    return _POSITION.match(text) is not None
