"""The `secret` read model: names, ciphertexts, which tools may receive each secret, whose it
is and which agents the admin shared it with."""

from __future__ import annotations

from domain.envelope import Envelope
from domain.events import SecretDeleted, SecretStored
from domain.secrets import shared_with
from projections.base import Connection

# A replacement keeps created_at: it says since when the name has held a secret.
_UPSERT = """
INSERT INTO secret (name, ciphertext, allowed_tools, description, created_at, updated_at, version,
                    owner, agents)
VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8)
ON CONFLICT (name) DO UPDATE
SET ciphertext = excluded.ciphertext, allowed_tools = excluded.allowed_tools,
    description = excluded.description, updated_at = excluded.updated_at,
    version = excluded.version, owner = excluded.owner, agents = excluded.agents
"""


class SecretProjection:
    """Maintains the `secret` table."""

    name: str = "secret"
    tables: tuple[str, ...] = ("secret",)
    handles: frozenset[str] = frozenset({"secret.stored", "secret.deleted"})

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """Upsert the secret's row when stored; delete it when deleted.

        A ``secret.stored`` recorded before secrets had owners names neither owner nor
        agents: it is the admin's and stays shared with every agent (migration 0026 says the
        same of the rows it found), so deployments that relied on that keep working.
        """
        match envelope.event:
            case SecretStored() as stored:
                await conn.execute(
                    _UPSERT,
                    stored.name,
                    stored.ciphertext,
                    list(stored.allowed_tools),
                    stored.description,
                    envelope.recorded_at,
                    envelope.version,
                    stored.owner,
                    list(shared_with(stored.agents)),
                )
            case SecretDeleted(name=name):
                await conn.execute("DELETE FROM secret WHERE name = $1", name)
