"""`ordinaut up`: migrate, then run every component in one process (embedded servers by default)."""

from __future__ import annotations

import asyncio
import functools
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from services.declarative.apply import ApplyOptions
from services.declarative.runner import FileApplier
from services.declarative.watch import watch_files
from services.ingest.consumer import IngestConfig
from services.ingest.service import run_ingest
from services.notify.service import NotifierConfig, run_notifier
from services.relay.service import RelayConfig, run_relay
from services.runtime.admin_token import load_admin_token
from services.runtime.embedded import without_password
from services.runtime.runtime_file import (
    read_runtime,
    remove_runtime,
    runtime_of_this_process,
    write_runtime,
)
from services.runtime.servers import Servers, start_servers
from services.runtime.settings import Settings
from services.runtime.supervisor import (
    Component,
    StartupError,
    api_component,
    bind_socket,
    supervise,
)
from services.runtime.webhook_key import load_webhook_key
from services.secrets.box import load_secret_key
from services.store.migrate import migrate, pending_migrations
from services.store.pool import open_pool
from services.timer.service import run_timer
from services.worker.service import WorkerConfig, run_worker


def _timer(servers: Servers, settings: Settings) -> Component:
    return Component(
        "timer",
        lambda stop: run_timer(
            servers.database_url, stop, servers.redis_url, settings.timer_lead_seconds
        ),
    )


def _worker(servers: Servers, settings: Settings, concurrency: int | None = None) -> Component:
    config = WorkerConfig(
        concurrency=concurrency or settings.worker_concurrency,
        lease_seconds=settings.worker_lease_seconds,
        poll_seconds=settings.worker_poll_seconds,
        grace_seconds=settings.worker_grace_seconds,
        outbound_allow=settings.outbound_allow,
        secret_key=load_secret_key(settings.secret_key, settings.data_dir),
        shell_allow=settings.shell_allow,
        python_allow=settings.python_allow,
        work_limits=settings.work_limits,
    )
    return Component(
        "worker", lambda stop: run_worker(servers.database_url, servers.redis_url, config, stop)
    )


def _tasks_files(servers: Servers, settings: Settings, paths: list[Path]) -> Component:
    """Applies the tasks files at start and on every save; the files own their tasks, so a
    task removed from a file is canceled (pruned)."""
    options = ApplyOptions(
        prune=True, shell_allow=settings.shell_allow, python_allow=settings.python_allow
    )

    async def run(stop: asyncio.Event) -> None:
        async with open_pool(servers.database_url, size=2, warm=1) as pool:
            say = functools.partial(print, flush=True)
            complain = functools.partial(print, file=sys.stderr, flush=True)
            applier = FileApplier(pool, options, out=say, err=complain)
            await watch_files(paths, applier.apply_path, stop)

    return Component("tasks-files", run)


def relay_config(settings: Settings, stream: str | None = None) -> RelayConfig:
    """The relay's settings (0 in a setting means no limit)."""
    return RelayConfig(
        stream=stream or settings.events_stream,
        maxlen=settings.relay_maxlen or None,
        max_age_seconds=settings.relay_max_age_seconds or None,
    )


def _relay(servers: Servers, settings: Settings, stream: str | None = None) -> Component:
    config = relay_config(settings, stream)
    return Component(
        "relay", lambda stop: run_relay(servers.database_url, servers.redis_url, stop, config)
    )


def _notifier(
    servers: Servers, settings: Settings, key: bytes, stream: str | None = None
) -> Component:
    config = NotifierConfig(
        stream=stream or settings.events_stream,
        max_attempts=settings.webhook_max_attempts,
        timeout_seconds=settings.webhook_timeout_seconds,
        outbound_allow=settings.outbound_allow,
        reclaim_idle_seconds=settings.notifier_reclaim_seconds,
    )
    return Component(
        "notifier",
        lambda stop: run_notifier(servers.database_url, servers.redis_url, key, stop, config),
    )


def _ingest(servers: Servers, settings: Settings) -> Component:
    config = IngestConfig(
        batch=settings.ingest_batch,
        max_payload_bytes=settings.ingest_max_payload_bytes,
        max_deliveries=settings.ingest_max_deliveries,
    )
    return Component(
        "ingest", lambda stop: run_ingest(servers.database_url, servers.redis_url, config, stop)
    )


def _background(
    servers: Servers, settings: Settings, key: bytes, tasks_files: Sequence[Path] = ()
) -> list[Component]:
    """Everything `up` runs beside the API."""
    components = [
        _timer(servers, settings),
        _worker(servers, settings),
        _relay(servers, settings),
        _notifier(servers, settings, key),
        _ingest(servers, settings),
    ]
    if tasks_files:
        components.append(_tasks_files(servers, settings, list(tasks_files)))
    return components


async def require_current_schema(database_url: str) -> None:
    """Standalone processes never migrate; they refuse to run on an older schema."""
    conn = await asyncpg.connect(database_url)
    try:
        pending = await pending_migrations(conn)
    finally:
        await conn.close()
    if pending:
        raise StartupError(
            f"the database schema is behind ({len(pending)} migrations pending);"
            " run `ordinaut migrate`"
        )


async def run_timer_alone(settings: Settings) -> None:
    """`ordinaut timer`: only the timer, until SIGTERM/SIGINT."""
    servers = await start_servers(
        settings.database_url, settings.redis_url, settings.data_dir, with_redis=False
    )
    try:
        await require_current_schema(servers.database_url)
        await _supervise(servers, settings, [_timer(servers, settings)])
    finally:
        await servers.stop()


async def run_worker_alone(settings: Settings, concurrency: int | None) -> None:
    """`ordinaut worker`: only a worker, until SIGTERM/SIGINT (then it drains and exits 0)."""
    servers = await open_servers(settings)
    try:
        await require_current_schema(servers.database_url)
        await _supervise(servers, settings, [_worker(servers, settings, concurrency)])
    finally:
        await servers.stop()


async def run_relay_alone(settings: Settings, stream: str | None) -> None:
    """`ordinaut relay`: only the relay, until SIGTERM/SIGINT."""
    servers = await open_servers(settings)
    try:
        await require_current_schema(servers.database_url)
        await _supervise(servers, settings, [_relay(servers, settings, stream)])
    finally:
        await servers.stop()


async def run_notifier_alone(settings: Settings, stream: str | None) -> None:
    """`ordinaut notifier`: only the notifier, until SIGTERM/SIGINT."""
    servers = await open_servers(settings)
    try:
        await require_current_schema(servers.database_url)
        key = load_webhook_key(settings.webhook_key, settings.data_dir)
        await _supervise(servers, settings, [_notifier(servers, settings, key, stream)])
    finally:
        await servers.stop()


async def run_ingest_alone(settings: Settings) -> None:
    """`ordinaut ingest`: only the ingest consumer, until SIGTERM/SIGINT."""
    servers = await open_servers(settings)
    try:
        await require_current_schema(servers.database_url)
        await _supervise(servers, settings, [_ingest(servers, settings)])
    finally:
        await servers.stop()


async def migrate_database(database_url: str) -> list[str]:
    """Apply pending migrations; returns their names."""
    conn = await asyncpg.connect(database_url)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


async def open_servers(settings: Settings, *, create: bool = False) -> Servers:
    """The configured servers, a running service's, or embedded ones kept under the data dir
    (a new cluster only with ``create``)."""
    return await start_servers(
        settings.database_url, settings.redis_url, settings.data_dir, create=create
    )


def _banner(settings: Settings, servers: Servers, token_path: str | None) -> str:
    base = f"http://{settings.host}:{settings.port}"
    token = f"in {token_path}" if token_path else "from ORDINAUT_ADMIN_TOKEN"
    where = "embedded" if servers.embedded else "configured"
    return (
        f"Ordinaut is up.\n  API:          {base}\n  API docs:     {base}/schema\n"
        f"  Admin token:  {token}\n  Servers:      {where} PostgreSQL and Redis\n"
        f"  PostgreSQL:   {without_password(servers.database_url)}\n"
        f"  Redis:        {without_password(servers.redis_url)}\n"
        "  Passwords:    `ordinaut env` prints the full URLs for scripts\n"
        "  Stop with Ctrl-C.\n"
    )


def _api(servers: Servers, settings: Settings, sock: socket.socket) -> Component:
    # Imported here: the API (Litestar, the MCP SDK) costs seconds that other processes skip.
    from services.api.app import ApiConfig, create_app
    from services.api.auth import admit_any_token
    from services.mcp.http import McpMount

    token = load_admin_token(settings.admin_token, settings.data_dir)
    config = ApiConfig(
        servers.database_url,
        servers.redis_url,
        token.sha256,
        secret_key=load_secret_key(settings.secret_key, settings.data_dir),
        webhook_key=load_webhook_key(settings.webhook_key, settings.data_dir),
        rate_limits=settings.rate_limits,
        auth_failure_limit=settings.auth_failure_limit,
        shell_allow=settings.shell_allow,
        python_allow=settings.python_allow,
        outbound_allow=settings.outbound_allow,
        work_limits=settings.work_limits,
    )
    banner = _banner(settings, servers, str(token.path) if token.path else None)
    announce = lambda: print(banner, file=sys.stdout, flush=True)  # noqa: E731
    mcp = McpMount(admit_any_token, (f"{settings.host}:*", *settings.mcp_allowed_hosts))
    return api_component(create_app(config, mounts=[mcp]), sock, announce)


async def _supervise(servers: Servers, settings: Settings, components: list[Component]) -> None:
    """Run ``components``, with this process's ops port (metrics, health) when configured."""
    if settings.metrics_port:
        from services.health.ops_server import ops_component  # Litestar: only when served

        ops = ops_component(
            servers.database_url,
            servers.redis_url,
            settings.metrics_host,
            settings.metrics_port,
            settings.events_stream,
        )
        components = [*components, ops]
    await supervise(components)


async def run_api_alone(settings: Settings) -> None:
    """`ordinaut api`: only the API (any number may run), until SIGTERM/SIGINT."""
    sock = bind_socket(settings.host, settings.port)
    servers = await open_servers(settings)
    try:
        await require_current_schema(servers.database_url)
        await _supervise(servers, settings, [_api(servers, settings, sock)])
    finally:
        sock.close()
        await servers.stop()


async def run_up(settings: Settings, tasks_files: Sequence[Path] = ()) -> None:
    """Start everything and block until SIGTERM/SIGINT; embedded servers stop on the way out."""
    missing = [str(path) for path in tasks_files if not path.is_file()]
    if missing:
        raise StartupError(f"no such tasks file: {', '.join(missing)}")
    running = read_runtime(settings.data_dir)
    if running is not None:
        raise StartupError(
            f"ordinaut up already runs on {settings.data_dir} (pid {running.pid},"
            f" API {running.api_url})"
        )
    sock = bind_socket(settings.host, settings.port)
    servers = await open_servers(settings, create=True)
    try:
        await migrate_database(servers.database_url)
        key = load_webhook_key(settings.webhook_key, settings.data_dir)
        api = _api(servers, settings, sock)
        background = _background(servers, settings, key, tasks_files)
        # Other commands on this data dir join these servers instead of starting their own.
        api_url = f"http://{settings.host}:{settings.port}"
        runtime = runtime_of_this_process(servers.database_url, servers.redis_url, api_url)
        write_runtime(settings.data_dir, runtime)
        await _supervise(servers, settings, [api, *background])
    finally:
        remove_runtime(settings.data_dir)
        sock.close()
        await servers.stop()
