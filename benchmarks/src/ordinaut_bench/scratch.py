"""Benchmarks run in a throwaway database on the configured server, never in real data."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from services.runtime.embedded import with_database
from services.store.migrate import migrate


@asynccontextmanager
async def scratch_database(server_url: str) -> AsyncIterator[str]:
    """A new, migrated database on the server of ``server_url``; dropped afterwards."""
    name = f"ordinaut_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = with_database(server_url, name)
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
