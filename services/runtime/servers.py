"""Which PostgreSQL and Redis a process uses: configured, a running service's, or embedded.

In that order: a URL given in the settings wins; otherwise a live `ordinaut up` on the data dir
is joined (its runtime file names its servers, and they stay its own: a joiner starts, stops
and deletes nothing); otherwise the embedded servers of the data dir are started here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from services.runtime.embedded import (
    EmbeddedPostgres,
    EmbeddedValkey,
    ServersError,
    ensure_database,
)
from services.runtime.runtime_file import Runtime, read_runtime


@dataclass
class Servers:
    """The database and Redis a process uses, and the embedded ones it started itself."""

    database_url: str
    redis_url: str
    embedded: list[EmbeddedPostgres | EmbeddedValkey] = field(default_factory=list)
    joined: Runtime | None = None  # the running service whose servers these are

    async def stop(self) -> None:
        """Stop whatever this process started, newest first (never a joined service's)."""
        for server in reversed(self.embedded):
            await asyncio.to_thread(server.stop)
        self.embedded.clear()


def has_data(data_dir: Path) -> bool:
    """Whether the data dir holds an embedded PostgreSQL cluster."""
    return (data_dir / "postgres" / "PG_VERSION").is_file()


def no_data_error(data_dir: Path) -> ServersError:
    """The one-line refusal for a data dir without data."""
    return ServersError(
        f"no Ordinaut data in {data_dir.resolve()}: start the service there with"
        f" `ordinaut up --data-dir {data_dir}`, or pass --data-dir / ORDINAUT_DATABASE_URL"
    )


async def start_servers(
    database_url: str | None,
    redis_url: str | None,
    data_dir: Path,
    *,
    with_redis: bool = True,
    create: bool = False,
) -> Servers:
    """Use the configured servers, a running service's, or the data dir's embedded ones.

    ``with_redis=False`` is for commands that only need the database (migrate, rebuild).
    ``create=True`` lets embedded PostgreSQL start on an empty data dir (a new cluster);
    otherwise an empty data dir is refused with a one-line error and left untouched.
    """
    running = None
    if database_url is None or (redis_url is None and with_redis):
        running = read_runtime(data_dir)
    if running is not None:
        database_url = database_url or running.database_url
        redis_url = redis_url or running.redis_url
    if database_url is None and not create and not has_data(data_dir):
        raise no_data_error(data_dir)
    servers = Servers(database_url or "", redis_url or "", joined=running)
    try:
        if database_url is None:
            postgres = EmbeddedPostgres(data_dir)
            servers.embedded.append(postgres)
            servers.database_url = await asyncio.to_thread(postgres.start)
            await ensure_database(servers.database_url)
        if redis_url is None and with_redis:
            valkey = EmbeddedValkey(data_dir)
            servers.embedded.append(valkey)
            servers.redis_url = await asyncio.to_thread(valkey.start)
    except BaseException:
        await servers.stop()
        raise
    return servers
