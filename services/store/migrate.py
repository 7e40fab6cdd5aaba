"""Applies the numbered SQL files in migrations/ once each, in order, under an advisory lock."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import domain
from projections.base import Connection

# Installed wheels carry migrations/ beside the packages; an editable checkout has it at the root.
MIGRATIONS_DIR = Path(domain.__file__).resolve().parent.parent / "migrations"
# Any fixed 64-bit number; only migrators take it.
_MIGRATION_LOCK = 0x6F72_6469_6D69_6772

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       TEXT PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    name: str
    sql: str


def available_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file, in the order its number gives."""
    files = sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    return [Migration(path.stem, path.read_text()) for path in files]


async def applied_migrations(conn: Connection) -> set[str]:
    """Names of the migrations already applied (empty on a new database)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return set()
    return {row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations")}


async def pending_migrations(conn: Connection) -> list[Migration]:
    """Migrations not applied yet; empty means the schema is what this code expects."""
    done = await applied_migrations(conn)
    return [m for m in available_migrations() if m.name not in done]


async def migrate(conn: Connection) -> list[str]:
    """Apply what is pending, each file in its own transaction; returns the names applied.

    The session-level advisory lock makes a second migrator wait and then find nothing to do.
    """
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(_BOOTSTRAP)
        applied: list[str] = []
        for migration in await pending_migrations(conn):
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (name) VALUES ($1)", migration.name
                )
            applied.append(migration.name)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
