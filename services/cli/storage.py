"""Where a one-shot CLI command finds its database: the configured one, a running service's,
or the data dir's embedded one (started for the command and stopped after it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.cli.up import require_current_schema
from services.runtime.servers import Servers, start_servers
from services.runtime.settings import Settings


@asynccontextmanager
async def storage(
    settings: Settings, *, create: bool = False, current: bool = True
) -> AsyncIterator[Servers]:
    """The configured database, a running service's, or the embedded one in the data dir
    (started here and stopped on the way out; a new cluster only with ``create``). Redis is
    the configured or the running service's, if any (never started here).

    ``current`` refuses a database whose schema is behind (or missing) with a one-line error.
    """
    servers = await start_servers(
        settings.database_url,
        settings.redis_url,
        settings.data_dir,
        with_redis=False,
        create=create,
    )
    try:
        if current:
            await require_current_schema(servers.database_url)
        yield servers
    finally:
        await servers.stop()


@asynccontextmanager
async def database(
    settings: Settings, *, create: bool = False, current: bool = True
) -> AsyncIterator[str]:
    """The database URL of `storage`."""
    async with storage(settings, create=create, current=current) as servers:
        yield servers.database_url
