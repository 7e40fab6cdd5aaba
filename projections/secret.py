"""The `secret` read model: names, ciphertexts, which tools may receive each secret, whose it
is and which agents the admin shared it with.

What each event does to the row is projections/rules/secret.py; this applies it inline.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.envelope import Envelope
from projections.base import Connection
from projections.rows import RowStatements, apply_rules
from projections.rules import secret as rules


class SecretProjection:
    """Maintains the `secret` table."""

    name: str = "secret"
    tables: tuple[str, ...] = (rules.TABLE,)
    handles: frozenset[str] = rules.MODEL.handles

    def __init__(self) -> None:
        self._rows = RowStatements(rules.MODEL)

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """Change the row for one event."""
        await self.apply_batch(conn, [envelope])

    async def apply_batch(self, conn: Connection, envelopes: Sequence[Envelope]) -> None:
        """Change the rows a batch's events touch."""
        await apply_rules(conn, self._rows, envelopes)
