"""The `secret` read model: names, ciphertexts and which tools may receive each secret."""

from __future__ import annotations

from domain.envelope import Envelope
from domain.events import SecretDeleted, SecretStored
from projections.base import Connection

# A replacement keeps created_at: it says since when the name has held a secret.
_UPSERT = """
INSERT INTO secret (name, ciphertext, allowed_tools, description, created_at, updated_at, version)
VALUES ($1, $2, $3, $4, $5, $5, $6)
ON CONFLICT (name) DO UPDATE
SET ciphertext = excluded.ciphertext, allowed_tools = excluded.allowed_tools,
    description = excluded.description, updated_at = excluded.updated_at,
    version = excluded.version
"""


class SecretProjection:
    """Maintains the `secret` table."""

    name: str = "secret"
    tables: tuple[str, ...] = ("secret",)
    handles: frozenset[str] = frozenset({"secret.stored", "secret.deleted"})

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """Upsert the secret's row when stored; delete it when deleted."""
        match envelope.event:
            case SecretStored() as stored:
                await conn.execute(
                    _UPSERT, stored.name, stored.ciphertext, list(stored.allowed_tools),
                    stored.description, envelope.recorded_at, envelope.version,
                )  # fmt: skip
            case SecretDeleted(name=name):
                await conn.execute("DELETE FROM secret WHERE name = $1", name)
