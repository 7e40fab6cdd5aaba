"""The worker process: lease due work, run it, heartbeat, and shut down gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.asyncio as redis
import structlog

from domain.envelope import EventMeta
from domain.events import ToolRegistered
from domain.limits import WorkLimits
from domain.outbound import Network
from projections.base import ProjectionSet
from services.application.triggers import Publication, publish_external
from services.channels.work import Announcer, WakeListener
from services.health import presence
from services.pipeline.governance import Clock, Governor
from services.pipeline.run import LeasedRun
from services.pipeline.runner import Runner
from services.runtime.settings import DEFAULTS
from services.secrets.box import SecretBox
from services.secrets.vault import SecretVault
from services.store.pool import open_pool
from services.tools.catalog import ToolCatalog
from services.tools.errors import ToolCallError
from services.tools.http import HttpTools
from services.tools.invoker import ToolInvoker
from services.tools.python import PythonTools
from services.tools.shell import ShellTool
from services.worker import leases
from services.worker.idle import idle_wait
from services.worker.recorder import Recorder
from services.worker.run_trace import RunTraces
from services.worker.throttle import ToolThrottle
from services.worker.waits import enter_wait

log = structlog.get_logger(__name__)
# What losing the database looks like (a restart, a failover): asyncpg raises InterfaceError
# for a connection that closed under a statement or a transaction, and InternalClientError
# ("cannot switch to state ...") when it closes while a transaction is being ended.
DB_FAILURES = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
# Agents' scopes change rarely; a short cache spares a query per step.
SCOPES_CACHE_SECONDS = 2.0


@dataclass(frozen=True)
class WorkerConfig:
    """How one worker process behaves."""

    concurrency: int = DEFAULTS.worker_concurrency
    lease_seconds: float = DEFAULTS.worker_lease_seconds
    # The longest due work waits when no wake-up arrives (Redis away or an entry lost).
    poll_seconds: float = DEFAULTS.worker_poll_seconds
    # On SIGTERM, how long in-flight runs may take to reach their end before being released.
    grace_seconds: float = DEFAULTS.worker_grace_seconds
    # Networks http tools may reach although not public (None: loopback only).
    outbound_allow: tuple[Network, ...] | None = None
    # The key stored secrets are sealed with (None: steps using secrets fail, saying why).
    secret_key: bytes | None = None
    # Programs shell.exec may run (ORDINAUT_SHELL_ALLOW); empty refuses every one.
    shell_allow: tuple[str, ...] = ()
    # Module prefixes python tools may come from (ORDINAUT_PYTHON_TOOLS_ALLOW).
    python_allow: tuple[str, ...] = ()
    # What one run may do (ORDINAUT_FOREACH_MAX_ITEMS...): a step past a limit fails.
    work_limits: WorkLimits = field(default_factory=WorkLimits)


class OwnerScopes:
    """Whether a run's owner may still use a tool: scopes can be revoked while tasks live."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._cache: dict[str, tuple[float, frozenset[str] | None]] = {}

    async def refusal(self, owner: str, tool: ToolRegistered) -> str | None:
        if not tool.scopes or owner == "admin":
            return None
        granted = await self._scopes(owner)
        if granted is None:
            return f"the task's owner {owner!r} no longer exists"
        if "admin" in granted:
            return None
        missing = sorted(set(tool.scopes) - granted)
        if missing:
            return f"tool {tool.address!r} needs scope {missing[0]!r}, which the task's owner lacks"
        return None

    async def _scopes(self, owner: str) -> frozenset[str] | None:
        cached = self._cache.get(owner)
        if cached is not None and time.monotonic() - cached[0] < SCOPES_CACHE_SECONDS:
            return cached[1]
        scopes = await self.pool.fetchval("SELECT scopes FROM agent WHERE id = $1", owner)
        granted = None if scopes is None else frozenset(scopes)
        self._cache[owner] = (time.monotonic(), granted)
        return granted


def worker_name() -> str:
    """Unique per process (consumer names must be), and readable in run histories."""
    return f"worker-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    """Leases as many runs as it has free slots, runs them, and records their events."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        projections: ProjectionSet,
        config: WorkerConfig,
        *,
        redis_client: redis.Redis | None = None,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.pool, self.projections, self.config = pool, projections, config
        self.name = name or worker_name()
        self.recorder = Recorder(pool, projections, self.name)
        self.invoker = ToolInvoker(
            http=HttpTools(allowed=config.outbound_allow),
            python=PythonTools(config.python_allow, threads=config.concurrency),
            shell=ShellTool(config.shell_allow),
            outbound_allow=config.outbound_allow,
        )
        self.catalog = ToolCatalog(pool)
        self.throttle = ToolThrottle(pool)
        box = SecretBox(config.secret_key) if config.secret_key is not None else None
        self.runner = Runner(
            record=self.recorder.record,
            find_tool=self.catalog.find,
            call_tool=self._call_tool,
            publish=self._publish,
            governor=Governor(pool, clock) if clock is not None else Governor(pool),
            load_secrets=SecretVault(pool, box).for_tool,
            check_access=OwnerScopes(pool).refusal,
            storage_errors=DB_FAILURES,
            limits=config.work_limits,
            enter_wait=lambda waiting: enter_wait(pool, projections, self.name, waiting),
        )
        self.redis = redis_client
        self.announcer = Announcer(redis_client) if redis_client is not None else None
        self._active: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._looked_again = False  # the last idle wait was a second look (worker/idle.py)
        self.traces = RunTraces()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop``; then finish or release what is held, within the grace period."""
        recorder_stop = asyncio.Event()
        heartbeat = asyncio.create_task(self._heartbeat(stop))
        background = [
            asyncio.create_task(self.recorder.run(recorder_stop)),
            heartbeat,
            asyncio.create_task(self._watch_cancels(stop)),
            asyncio.create_task(self._report_presence(stop)),
        ]
        if self.redis is not None:
            listener = WakeListener(self.redis, self.name, self._wake.set)
            background.append(asyncio.create_task(listener.run(stop)))
        log.info("worker started", worker=self.name, concurrency=self.config.concurrency)
        try:
            await self._lease_loop(stop)
            await self._drain()
        finally:
            recorder_stop.set()
            heartbeat.cancel()  # nothing left to extend; it may be asleep for lease_seconds / 3
            await asyncio.gather(*background, return_exceptions=True)
            async with self.pool.acquire() as conn:
                await leases.release(conn, self.name)
                await presence.leave(conn, self.name)
            await self.invoker.aclose()
            log.info("worker stopped", worker=self.name)

    async def _lease_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            free = self.config.concurrency - len(self._active)
            leased: list[LeasedRun] = []
            if free > 0:
                try:
                    leased = await self._lease(free)
                except DB_FAILURES as exc:
                    log.warning("leasing failed; retrying", error=str(exc))
                    await _wait(stop, self._wake, self.config.poll_seconds)
                    continue
                for run in leased:
                    self._start(run)
            if free > 0 and len(leased) == free:
                continue  # there may be more ready right now
            await _wait(stop, self._wake, await self._idle_seconds(free))

    async def _lease(self, free: int) -> list[LeasedRun]:
        async with self.pool.acquire() as conn:
            leased, readied = await leases.lease(
                conn,
                self.projections,
                self.name,
                limit=free,
                lease_seconds=self.config.lease_seconds,
            )
            await self.traces.fetch(conn, leased)
        if readied and self.announcer is not None:
            await self.announcer.announce(readied)
        return leased

    async def _idle_seconds(self, free: int) -> float:
        """Until the earliest future work, at most the poll interval (a lost wake-up costs
        no more than that); with every slot busy, until a run ends or the poll interval."""
        if free <= 0:
            return self.config.poll_seconds
        try:
            async with self.pool.acquire() as conn:
                seconds = await leases.seconds_until_ready(conn)
        except DB_FAILURES as exc:
            log.warning("checking for upcoming work failed", error=str(exc))
            return self.config.poll_seconds
        wait, self._looked_again = idle_wait(seconds, self._looked_again, self.config.poll_seconds)
        return wait

    def _start(self, run: LeasedRun) -> None:
        task = asyncio.create_task(self._execute(run))
        self._active[run.run_id] = task

    async def _execute(self, run: LeasedRun) -> None:
        # Each run is its own asyncio task, so these bindings (context variables) are its own.
        structlog.contextvars.bind_contextvars(
            run_id=run.run_id, task_id=run.task_id, worker=self.name
        )
        try:
            with self.traces.span(run, self.name):
                await self.runner.execute(run)
        except Exception:  # the lease lapses and another attempt picks the run up
            log.exception("run crashed the runner", run_id=run.run_id)
        finally:
            self._active.pop(run.run_id, None)
            # Lease in batches: one lease transaction per freed slot would cost more than
            # the runs. The poll interval bounds how long a partly free worker waits.
            free = self.config.concurrency - len(self._active)
            if not self._active or free >= max(1, self.config.concurrency // 4):
                self._wake.set()

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        """Extend held leases well before they lapse."""
        interval = self.config.lease_seconds / 3
        while True:
            if stop.is_set():  # draining: stop.wait() returns at once, so sleep instead
                await asyncio.sleep(interval)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
            if stop.is_set() and not self._active:
                return
            if not self._active:
                continue
            try:
                async with self.pool.acquire() as conn:
                    await leases.extend(
                        conn, self.name, list(self._active), self.config.lease_seconds
                    )
            except DB_FAILURES as exc:
                log.warning("heartbeat failed", error=str(exc))

    async def _report_presence(self, stop: asyncio.Event) -> None:
        """Say this worker is alive, every few seconds, until stopped."""
        while not stop.is_set():
            try:
                async with self.pool.acquire() as conn:
                    await presence.report(
                        conn, self.name, self.config.concurrency, len(self._active)
                    )
            except DB_FAILURES as exc:
                log.warning("reporting presence failed", error=str(exc))
            await _wait(stop, asyncio.Event(), presence.PRESENCE_SECONDS)

    async def _watch_cancels(self, stop: asyncio.Event) -> None:
        """Abandon tool calls in flight whose run was canceled, within a poll interval.

        Only calls that can really be stopped are watched (see `cancellable`); the others end
        and the run stops at its next step boundary.
        """
        while not stop.is_set():
            await _wait(stop, asyncio.Event(), self.config.poll_seconds)
            run_ids = self.runner.abortable_runs()
            if not run_ids:
                continue
            try:
                async with self.pool.acquire() as conn:
                    canceled = await leases.cancel_requested(conn, run_ids)
            except DB_FAILURES as exc:
                log.warning("checking for canceled runs failed", error=str(exc))
                continue
            for run_id in canceled:
                log.info("abandoning the tool call of a canceled run", run_id=run_id)
                self.runner.abort(run_id)

    async def _drain(self) -> None:
        """Let in-flight runs finish within the grace period; cancel the rest (released)."""
        if not self._active:
            return
        log.info("draining", worker=self.name, runs=len(self._active))
        _, late = await asyncio.wait(list(self._active.values()), timeout=self.config.grace_seconds)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _call_tool(
        self, tool: ToolRegistered, arguments: dict[str, Any], key: str, timeout_seconds: float
    ) -> Any:
        if tool.rate_limit is not None:
            try:
                await self.throttle.wait_turn(tool.address, tool.rate_limit)
            except DB_FAILURES as exc:
                # Without a slot the limit cannot be kept: not called now, the attempt retries.
                raise ToolCallError(
                    f"{tool.address}: no call slot could be taken ({exc})", retryable=True
                ) from exc
        return await self.invoker.call(
            tool, arguments, idempotency_key=key, timeout=timeout_seconds
        )

    async def _publish(self, run: LeasedRun, arguments: dict[str, Any], key: str) -> dict[str, Any]:
        meta = EventMeta(
            actor=self.name,
            correlation_id=run.run_id,
            idempotency_key=arguments.get("idempotency_key") or key,
        )
        publication = Publication(
            arguments["topic"], arguments.get("payload", {}), meta, source=f"run:{run.run_id}"
        )
        async with self.pool.acquire() as conn, conn.transaction():
            result = await publish_external(conn, self.projections, publication)
        if self.announcer is not None and not result.replayed:
            await self.announcer.announce([*result.run_ids, *result.resumed_runs])
        return {"event_id": result.event_id, "position": result.position}


async def _wait(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until woken or stopped."""
    if seconds <= 0:
        return
    waits = [asyncio.create_task(wake.wait()), asyncio.create_task(stop.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def run_worker(
    database_url: str, redis_url: str | None, config: WorkerConfig, stop: asyncio.Event
) -> None:
    """A worker as a supervised component, with its own pool and Redis client."""
    from projections.registry import inline_projections

    client = (
        redis.Redis.from_url(redis_url, socket_timeout=5.0, socket_connect_timeout=2.0)
        if redis_url
        else None
    )
    try:
        async with open_pool(database_url, size=min(config.concurrency, 8) + 3, warm=2) as pool:
            await Worker(pool, inline_projections(), config, redis_client=client).run(stop)
    finally:
        if client is not None:
            await client.aclose()
