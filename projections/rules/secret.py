"""What each event does to a secret's row (the `secret` table): its ciphertext, which tools may
receive it, whose it is and which agents the admin shared it with."""

from __future__ import annotations

from domain.envelope import Envelope
from domain.events import SecretDeleted, SecretStored, secret_stream
from domain.secrets import shared_with
from projections.rules.row import Model, Row, Rule

TABLE = "secret"
KEY = "name"
COLUMNS = (
    "name",
    "ciphertext",
    "allowed_tools",
    "description",
    "created_at",
    "updated_at",
    "version",
    "owner",
    "agents",
)


def key_of(envelope: Envelope) -> str:
    """The secret an event changes."""
    event = envelope.event
    assert isinstance(event, SecretStored | SecretDeleted)
    return event.name


def _stored(row: Row | None, envelope: Envelope) -> Row | None:
    """The secret's row; a replacement keeps created_at (since when the name has held a secret).

    A ``secret.stored`` recorded before secrets had owners names neither owner nor agents: it
    is the admin's and stays shared with every agent (migration 0026 says the same of the rows
    it found), so deployments that relied on that keep working.
    """
    stored, at = envelope.event, envelope.recorded_at
    assert isinstance(stored, SecretStored)
    return {
        "name": stored.name,
        "ciphertext": stored.ciphertext,
        "allowed_tools": list(stored.allowed_tools),
        "description": stored.description,
        "created_at": at if row is None else row["created_at"],
        "updated_at": at,
        "version": envelope.version,
        "owner": stored.owner,
        "agents": list(shared_with(stored.agents)),
    }


def _deleted(row: Row | None, envelope: Envelope) -> Row | None:
    return None


RULES: dict[str, Rule] = {"secret.stored": _stored, "secret.deleted": _deleted}
MODEL = Model(
    TABLE,
    KEY,
    COLUMNS,
    frozenset(),
    RULES,
    key_of,
    secret_stream,
    removes=frozenset({"secret.deleted"}),
)
