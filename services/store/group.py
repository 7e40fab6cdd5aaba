"""Group commit: the concurrent small commands of one process recorded in one transaction.

A single-event command on its own is five round trips (BEGIN, stream lock and version read,
insert, projection row, COMMIT) for one row; PostgreSQL spends most of its time on the
transaction, not the row. ``GroupCommitter.append`` queues the command; while ``lanes``
groups are in flight, commands arriving meanwhile wait and then go together as the next
group, so the cost of a transaction is shared by as many commands as arrived during one.
Nothing waits on a timer: an idle committer starts a command's group at once.

A group that needs nothing read between its lock and its insert, and whose projected rows the
insert statement can file itself (external events, with no expected version or idempotency
key), is one statement, its own transaction (services/store/group_insert.py's
``insert_alone``). Any other group is recorded set-based in a transaction
(services/store/group_record.py): every key claimed in one
statement, every stream locked in one sorted call, every event inserted in one statement,
projections per kind of statement. A command refused on its own (stale ``expected_version``,
a key used for other content, an idempotent repeat) is answered without disturbing the rest.
If a statement of the group fails (e.g. text PostgreSQL cannot store, a projection's error,
a stream held past the lock timeout), the transaction is rolled back and the group recorded
again command by command, each under a SAVEPOINT, so one command's failure fails no other.
Each caller gets its own result or exception only after the group's COMMIT (read your writes);
if the COMMIT itself fails, no command of the group is recorded and each caller gets that error.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from domain.envelope import EventMeta
from projections.base import Connection, ProjectionSet
from services.runtime import tracing
from services.store.events import AppendResult, Command, StreamAppend
from services.store.group_insert import insert_alone
from services.store.group_record import CommandOutcome, Pending, record_each, record_together

MAX_GROUP = 64  # commands per transaction at most; more wait for the next one
# Groups in flight at once, each on its own connection. Callers that wait for their command
# before sending the next move in step, so under steady load one group holds them all; more
# lanes serve commands that arrive while a group is in flight. Splitting the waiting commands
# over the free lanes instead measured half the throughput (more transactions, same work).
LANES = 4


@dataclass
class _Queue:
    """Commands waiting for a group, and the groups in flight."""

    waiting: deque[tuple[Pending, asyncio.Future[AppendResult]]] = field(default_factory=deque)
    running: int = 0
    scheduled: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class GroupCommitter:
    """Records commands of this process in shared transactions; see the module docstring.

    ``pool`` needs ``lanes`` connections to spare. Use one committer per process and pool.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        projections: ProjectionSet,
        *,
        lanes: int = LANES,
        max_group: int = MAX_GROUP,
    ) -> None:
        self.pool, self.projections = pool, projections
        self.lanes, self.max_group = lanes, max_group
        self._queue = _Queue()
        self.transactions = 0  # groups recorded (or attempted) so far: commands per transaction

    async def append(
        self,
        appends: Sequence[StreamAppend],
        meta: EventMeta,
        *,
        fingerprint: str = "",
    ) -> AppendResult:
        """Record one command's events with their projections, in a transaction of its own or
        shared with other commands; returns once committed. Raises exactly what
        ``append_in_transaction`` would (VersionConflict, IdempotencyKeyReused, ...)."""
        if not any(a.events for a in appends):
            raise ValueError("a command must append at least one event")
        command = Pending(list(appends), tracing.stamped(meta), fingerprint)
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        self._queue.waiting.append((command, future))
        self._schedule()
        return await future

    def _schedule(self) -> None:
        # Started on the next turn of the loop, not now: callers woken by the last group's
        # commit queue their next command first, so it joins this group instead of the one after.
        if not self._queue.scheduled:
            self._queue.scheduled = True
            asyncio.get_running_loop().call_soon(self._start)

    def _start(self) -> None:
        queue = self._queue
        queue.scheduled = False
        while queue.waiting and queue.running < self.lanes:
            group = self._take()
            queue.running += 1
            self.transactions += 1
            task = asyncio.create_task(self._run(group))
            queue.tasks.add(task)
            task.add_done_callback(queue.tasks.discard)

    def _take(self) -> list[tuple[Pending, asyncio.Future[AppendResult]]]:
        """The next group, in arrival order; a repeat of an idempotency key already in the
        group waits for the next one, so it sees the first one's result."""
        group: list[tuple[Pending, asyncio.Future[AppendResult]]] = []
        later: list[tuple[Pending, asyncio.Future[AppendResult]]] = []
        keys = set[tuple[str, str]]()
        waiting = self._queue.waiting
        while waiting and len(group) < self.max_group:
            item = waiting.popleft()
            key = item[0].key
            if key is not None and key in keys:
                later.append(item)
                continue
            if key is not None:
                keys.add(key)
            group.append(item)
        waiting.extendleft(reversed(later))
        return group

    async def _run(self, group: list[tuple[Pending, asyncio.Future[AppendResult]]]) -> None:
        try:
            outcomes = await self._record([command for command, _ in group])
        except asyncio.CancelledError:  # shutting down: its callers learn nothing more
            for _, future in group:
                future.cancel()
            raise
        except Exception as exc:  # the transaction could not commit: nothing was recorded
            outcomes = [exc] * len(group)
        finally:
            self._queue.running -= 1
            if self._queue.waiting:
                self._schedule()
        for (_, future), outcome in zip(group, outcomes, strict=True):
            if future.done():  # its caller was cancelled; the command stands as recorded
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def _record(self, commands: list[Pending]) -> list[CommandOutcome]:
        """The group in one statement if it can be (``insert_alone``), else in one
        transaction: set-based, or command by command if that fails."""
        async with self.pool.acquire() as conn:
            try:
                alone = await insert_alone(
                    conn, [Command(c.appends, c.meta) for c in commands], self.projections
                )
            except Exception as exc:  # nothing was recorded: each command on its own
                if len(commands) == 1:
                    return [exc]
                return await self._each(conn, commands)
            if alone is not None:
                return list(alone)
            transaction = conn.transaction()
            await transaction.start()
            try:
                outcomes = await record_together(conn, commands, self.projections)
            except Exception as exc:
                await transaction.rollback()
                if len(commands) == 1:
                    return [exc]
                return await self._each(conn, commands)
            except BaseException:
                await transaction.rollback()
                raise
            await transaction.commit()
            return outcomes

    async def _each(self, conn: Connection, commands: list[Pending]) -> list[CommandOutcome]:
        """The group in one transaction, each command under its own savepoint."""
        transaction = conn.transaction()
        await transaction.start()
        try:
            outcomes = await record_each(conn, commands, self.projections)
        except BaseException:
            await transaction.rollback()
            raise
        await transaction.commit()
        return outcomes
