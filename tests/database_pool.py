"""Per-test databases without paying CREATE DATABASE for each test.

Cloning the migrated template costs ~300 ms of fsync-bound copying per test; emptying a used
database costs a tenth of that. A database goes back to the pool only if the test left its
schema as the template has it; it is renamed first, so a process the test forgot to stop cannot
reconnect to it and write into a later test's data.
"""

from __future__ import annotations

import uuid

import asyncpg

from services.runtime.embedded import with_database

# Objects in the public schema and their triggers: a test that changed them gets a new database.
_SCHEMA_FINGERPRINT = """
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public')
     + (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal)
     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public')
"""
_TABLES = """
SELECT format('%I', tablename) FROM pg_tables
 WHERE schemaname = 'public' AND tablename <> 'schema_migrations' ORDER BY tablename
"""
_SEQUENCES = """
SELECT format('%I', sequencename), last_value IS NOT NULL, coalesce(last_value, start_value)
  FROM pg_sequences WHERE schemaname = 'public'
"""


class DatabasePool:
    """Fresh-looking migrated databases cloned from ``template``, emptied and reused."""

    def __init__(self, server_url: str, template: str) -> None:
        self._server_url = server_url
        self._template = template
        self._free: list[str] = []
        self._seeded: dict[str, list[asyncpg.Record]] = {}
        self._sequences: list[asyncpg.Record] = []
        self._fingerprint = -1
        self._tables: list[str] = []

    async def open(self) -> None:
        """Read what the template holds: its seeded rows, sequences and schema fingerprint."""
        conn = await asyncpg.connect(with_database(self._server_url, self._template))
        try:
            self._fingerprint = await conn.fetchval(_SCHEMA_FINGERPRINT)
            self._tables = [row[0] for row in await conn.fetch(_TABLES)]
            for table in self._tables:
                rows = await conn.fetch(f"SELECT * FROM {table}")
                if rows:
                    self._seeded[table] = rows
            self._sequences = await conn.fetch(_SEQUENCES)
        finally:
            await conn.close()

    async def take(self) -> str:
        """The name of an empty migrated database for one test."""
        if self._free:
            return self._free.pop()
        name = f"ordinaut_test_{uuid.uuid4().hex[:12]}"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"')
        return name

    async def give_back(self, name: str) -> None:
        """Empty ``name`` for the next test, or drop it if the test changed its schema."""
        await self._admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        # Renamed first: a process the test left running cannot reconnect to it any more.
        renamed = f"ordinaut_test_{uuid.uuid4().hex[:12]}"
        try:
            await self._admin(f'ALTER DATABASE "{name}" RENAME TO "{renamed}"')
        except asyncpg.PostgresError:  # such a process reconnected in between
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        try:
            reusable = await self._empty(renamed)
        except (OSError, asyncpg.PostgresError):
            reusable = False
        if reusable:
            self._free.append(renamed)
        else:
            await self._admin(f'DROP DATABASE IF EXISTS "{renamed}" WITH (FORCE)')

    async def close(self) -> None:
        """Drop every pooled database."""
        for name in self._free:
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._free.clear()

    async def _empty(self, name: str) -> bool:
        conn = await asyncpg.connect(with_database(self._server_url, name))
        try:
            if await conn.fetchval(_SCHEMA_FINGERPRINT) != self._fingerprint:
                return False
            async with conn.transaction():
                # Replica mode switches off the triggers that guard the append-only log.
                await conn.execute("SET LOCAL session_replication_role = replica")
                await conn.execute(f"TRUNCATE {', '.join(self._tables)}")
                for table, rows in self._seeded.items():
                    await conn.copy_records_to_table(
                        table.strip('"'),
                        records=[tuple(r) for r in rows],
                        columns=list(rows[0].keys()),
                    )
                for sequence, called, value in self._sequences:
                    await conn.execute("SELECT setval($1, $2, $3)", sequence, value, called)
            # Other leftovers a test can leave on its connections end with them.
            return True
        finally:
            await conn.close()

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(with_database(self._server_url, "postgres"))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()
