"""The timer process: claims tasks whose next run is due and appends what the domain decides."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg
import msgspec
import redis.asyncio as redis
import structlog

from domain.envelope import EventMeta
from domain.events import RunQueued, TaskDefinition, TaskDue, run_stream, task_stream
from domain.runs import queue_runs
from domain.schedules import load_schedule
from domain.timer import MAX_SLEEP, DueTask, decide_due
from projections.base import ProjectionSet
from projections.task import TIMER_CHANNEL
from services.channels.work import Announcer
from services.runtime.metrics import TIMER_LAG
from services.runtime.settings import DEFAULTS
from services.runtime.tracing import aspan
from services.store.events import StreamAppend, append_in_transaction
from services.store.pool import open_pool

_definition = msgspec.json.Decoder(TaskDefinition)

# The claimed task rows (FOR UPDATE SKIP LOCKED) are the claim: a second timer skips them
# instead of racing for them, and a command on one of them waits for this commit.
# statement_timestamp(), not clock_timestamp(): a stable value can bound the index scan, where
# a volatile one turns into a filter over every registered task.
_CLAIM = """
SELECT id, version, created_by, definition::text AS definition, next_run_at,
       statement_timestamp() AS now
FROM task
WHERE status = 'active' AND NOT deleted
  AND next_run_at <= statement_timestamp() + make_interval(secs => $2)
ORDER BY next_run_at
LIMIT $1
FOR UPDATE SKIP LOCKED
"""
_ANY_DUE = """
SELECT EXISTS (SELECT FROM task
               WHERE status = 'active' AND NOT deleted
                 AND next_run_at <= statement_timestamp() + make_interval(secs => $1))
"""
_EARLIEST = """
SELECT extract(epoch FROM clock_timestamp()) AS now,
       extract(epoch FROM (SELECT min(next_run_at) FROM task
                           WHERE status = 'active' AND NOT deleted)) AS earliest
"""
MAX_SLEEP_SECONDS = MAX_SLEEP.total_seconds()
# How far ahead of an occurrence the timer fires it at most, and at least half as far
# (ORDINAUT_TIMER_LEAD_SECONDS; see _next_run): the run is
# queued with run_at = the due instant, and a worker sleeping until then starts it at once, so
# the firing transaction and the wake-up are not on the path from due to start. A change to
# the task inside this window (a pause, say) no longer stops that one run; a cancel or delete
# still does (the lease settles runs of canceled and deleted tasks).
DEFAULT_LEAD_SECONDS = DEFAULTS.timer_lead_seconds
BACKOFF_MAX_SECONDS = 2.0  # the longest wait between tries to reach a database that is away
# What losing the database looks like (a restart, a failover, a network cut).
# (InternalClientError: a connection that closed while a transaction was being ended.)
_CONNECTION_FAILURES = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)

log = structlog.get_logger(__name__)


LagObserver = Callable[[TaskDue], None]


class Timer:
    """Fires due occurrences in batches until told to stop."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        projections: ProjectionSet,
        *,
        batch: int = 500,
        on_fired: LagObserver | None = None,
        announcer: Announcer | None = None,
        lead_seconds: float = DEFAULT_LEAD_SECONDS,
    ) -> None:
        self.pool, self.projections, self.batch = pool, projections, batch
        self.on_fired, self.announcer = on_fired, announcer
        self.lead_seconds = lead_seconds

    async def run(self, stop: asyncio.Event) -> None:
        """Fire what is due, sleep until the next occurrence or a wake-up, repeat; while the
        database is away, retry with capped backoff (a firing round is one transaction, so an
        interrupted one fires nothing and is simply done again)."""
        delay = 0.1
        while not stop.is_set():
            began = time.monotonic()
            try:
                await self._run_listening(stop)
            except _CONNECTION_FAILURES as exc:
                log.warning("timer lost the database; retrying", error=str(exc) or repr(exc))
                if time.monotonic() - began > 10 * BACKOFF_MAX_SECONDS:
                    delay = 0.1  # it had been working: this is a new outage
                await _sleep(delay, asyncio.Event(), stop)
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)

    async def _run_listening(self, stop: asyncio.Event) -> None:
        """Fire and sleep with a LISTEN connection for wake-ups, until stopped or it fails."""
        woken = asyncio.Event()
        # The epoch of the run the timer sleeps until; infinite while it is awake, so that
        # any notification during a firing round makes the next sleep start with a recheck.
        waiting_for = math.inf

        def wake(_conn: object, _pid: int, _channel: str, payload: object) -> None:
            if float(str(payload)) < waiting_for:
                woken.set()

        def lost(_conn: object) -> None:
            woken.set()

        async with self.pool.acquire() as listener:
            await listener.add_listener(TIMER_CHANNEL, wake)
            # Wake-ups come over this connection only: when it goes, start over with a new one.
            listener.add_termination_listener(lost)
            try:
                check = True
                while not stop.is_set():
                    if listener.is_closed():
                        raise asyncpg.ConnectionDoesNotExistError("the LISTEN connection closed")
                    waiting_for = math.inf
                    woken.clear()
                    if await self.fire_due(check=check) == self.batch:
                        check = False
                        continue  # more may be due right now
                    seconds, waiting_for = await self._next_run()
                    await _sleep(seconds, woken, stop)
                    # A sleep that ran its course ends when something falls due: claim it
                    # straight away. A notification may be about a task due later.
                    check = woken.is_set()
            finally:
                # A connection the server dropped cannot be told anything; the pool discards it.
                with contextlib.suppress(*_CONNECTION_FAILURES):
                    listener.remove_termination_listener(lost)
                    await listener.remove_listener(TIMER_CHANNEL, wake)

    async def fire_due(self, *, check: bool = True) -> int:
        """Fire one batch of tasks due within the lead, in one transaction; returns how many
        tasks it claimed. ``check`` first asks (outside a transaction) whether any is due."""
        # Most notification wake-ups (a task created for later, say) find nothing due.
        if check and not await self.pool.fetchval(_ANY_DUE, self.lead_seconds):
            return 0
        async with aspan("ordinaut.timer.fire"), self.pool.acquire() as conn, conn.transaction():
            # The claimed task rows (FOR UPDATE SKIP LOCKED) are this timer's alone until
            # commit: other timers skip them, a command on one of them waits (tasks.py).
            rows = await conn.fetch(_CLAIM, self.batch, self.lead_seconds)
            if not rows:
                return 0
            appends = [a for row in rows for a in self._decide(row, rows[0]["now"])]
            meta = EventMeta(actor="timer", correlation_id=str(uuid.uuid4()))
            await append_in_transaction(conn, appends, meta, self.projections)
        self._observe(appends)
        if self.announcer is not None:
            await self.announcer.announce(
                e.run_id for a in appends for e in a.events if isinstance(e, RunQueued)
            )
        return len(rows)

    def _decide(self, row: asyncpg.Record, now: datetime) -> list[StreamAppend]:
        definition = _definition.decode(row["definition"])
        schedule = load_schedule(
            definition.schedule_kind,
            definition.schedule_expr,
            definition.timezone,
            definition.dtstart,
        )
        task = DueTask(row["id"], definition, row["next_run_at"])
        lead = timedelta(seconds=self.lead_seconds)
        events = decide_due(task, schedule, now, lambda: str(uuid.uuid4()), lead)
        return [
            StreamAppend(task_stream(row["id"]), events, expected_version=row["version"]),
            *(
                StreamAppend(run_stream(run.run_id), [run], expected_version=0)
                for run in queue_runs(events, definition, row["created_by"])
            ),
        ]

    def _observe(self, appends: list[StreamAppend]) -> None:
        for append in appends:
            for event in append.events:
                if isinstance(event, TaskDue):
                    lag = (event.fired_at - event.scheduled_for).total_seconds()
                    TIMER_LAG.observe(max(lag, 0.0))
                    if self.on_fired is not None:
                        self.on_fired(event)

    async def _next_run(self) -> tuple[float, float]:
        """How long to sleep (until half the lead before the next occurrence), and the epoch
        (on the database's clock) of that occurrence: a task due before it is a reason to wake.

        Half, not the whole lead: the round then claims what falls due within the lead of
        its own instant, so the occurrences of the next half lead share its transaction, each
        still queued at least half the lead ahead. Waking the whole lead ahead fired one
        transaction per occurrence when they come close together (`bench compare`'s 100 a
        second), each with its fixed cost of round trips."""
        row = await self.pool.fetchrow(_EARLIEST)
        assert row is not None
        now = float(row["now"])
        until = now + MAX_SLEEP_SECONDS
        if row["earliest"] is not None:
            until = min(until, float(row["earliest"]))
        return until - self.lead_seconds / 2 - now, until


async def _sleep(seconds: float, woken: asyncio.Event, stop: asyncio.Event) -> None:
    """Wait ``seconds`` or until woken or stopped, whichever comes first."""
    if seconds <= 0:
        return
    waits = [asyncio.create_task(woken.wait()), asyncio.create_task(stop.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await wait


async def run_timer(
    database_url: str,
    stop: asyncio.Event,
    redis_url: str | None = None,
    lead_seconds: float = DEFAULT_LEAD_SECONDS,
) -> None:
    """The timer as a supervised component with its own small pool."""
    from projections.registry import inline_projections

    client = redis.Redis.from_url(redis_url, socket_timeout=2.0) if redis_url else None
    try:
        async with open_pool(database_url, size=3) as pool:
            announcer = Announcer(client) if client is not None else None
            timer = Timer(
                pool, inline_projections(), announcer=announcer, lead_seconds=lead_seconds
            )
            await timer.run(stop)
    finally:
        if client is not None:
            await client.aclose()
