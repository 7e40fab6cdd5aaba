"""Real servers for tests: the ones named by ORDINAUT_TEST_* variables, or embedded ones.

Every test that touches Postgres gets its own database, cloned from a migrated template.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.runtime.embedded import (
    EmbeddedPostgres,
    EmbeddedValkey,
    ensure_database,
    with_database,
)
from services.store.migrate import migrate
from tests.database_pool import DatabasePool
from tests.postgres_server import owned_postgres, postgres_template
from tests.redis_server import own_redis

# fixtures defined elsewhere, shared by every test
__all__ = ["own_redis", "owned_postgres", "postgres_template"]


@pytest.fixture(scope="session")
async def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A server URL (any database on it); the test suite creates its own databases."""
    configured = os.environ.get("ORDINAUT_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("embedded-postgres"))
    url = await asyncio.to_thread(server.start)
    await ensure_database(url)
    yield url
    await asyncio.to_thread(server.stop)


@pytest.fixture(scope="session")
async def redis_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A Redis-compatible server URL."""
    configured = os.environ.get("ORDINAUT_TEST_REDIS_URL")
    if configured:
        yield _database_per_xdist_worker(configured)
        return
    server = EmbeddedValkey(tmp_path_factory.mktemp("embedded-valkey"))
    url = await asyncio.to_thread(server.start)
    yield url
    await asyncio.to_thread(server.stop)


def _database_per_xdist_worker(url: str) -> str:
    """Under pytest-xdist each worker takes its own Redis database (the base one plus its index),
    so fixed stream names such as ``ordinaut:work`` never carry one worker's entries to another."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{base + int(worker[2:])}"))


async def _admin(postgres_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(with_database(postgres_url, "postgres"))


@pytest.fixture(scope="session")
async def template_database(postgres_url: str) -> AsyncIterator[str]:
    """A migrated database that each test's database is cloned from."""
    name = f"ordinaut_template_{uuid.uuid4().hex[:12]}"
    admin = await _admin(postgres_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(with_database(postgres_url, name))
    await migrate(conn)
    await conn.close()
    yield name
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture(scope="session")
async def database_pool(postgres_url: str, template_database: str) -> AsyncIterator[DatabasePool]:
    """Migrated databases for tests, emptied and reused between them."""
    databases = DatabasePool(postgres_url, template_database)
    await databases.open()
    yield databases
    await databases.close()


@pytest.fixture
async def database_url(postgres_url: str, database_pool: DatabasePool) -> AsyncIterator[str]:
    """URL of an empty, migrated database of this test's own (no other test uses it meanwhile)."""
    name = await database_pool.take()
    yield with_database(postgres_url, name)
    await database_pool.give_back(name)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A connection pool on the test's own database."""
    async with asyncpg.create_pool(database_url, min_size=1, max_size=24) as created:
        yield created
