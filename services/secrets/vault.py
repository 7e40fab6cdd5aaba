"""Reading secrets for a step: only those the run's owner may use and the step's tool may
receive, decrypted on demand."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from domain.secrets import allows, usable_by
from services.secrets.box import SecretBox, SecretKeyError


class SecretUnavailable(Exception):
    """A step refers to a secret it cannot have; the message says which and why."""


class SecretVault:
    """Secrets from the `secret` table; without a box, checks only and hands out placeholders
    (what a dry run needs: everything validated, nothing revealed)."""

    def __init__(self, pool: asyncpg.Pool, box: SecretBox | None, *, reveal: bool = True) -> None:
        self.pool, self.box, self.reveal = pool, box, reveal

    async def for_tool(self, owner: str, address: str, names: Iterable[str]) -> dict[str, str]:
        """name -> value for each of ``names``: each must be ``owner``'s or shared with it,
        and allowed for ``address``. The reasons never include a value."""
        wanted = sorted(set(names))
        rows = {
            row["name"]: row
            for row in await self.pool.fetch(
                "SELECT name, ciphertext, allowed_tools, owner, agents FROM secret"
                " WHERE name = ANY($1::text[])",
                wanted,
            )
        }
        values: dict[str, str] = {}
        for name in wanted:
            row = rows.get(name)
            if row is None:
                raise SecretUnavailable(f"secret {name!r} does not exist (store it: POST /secrets)")
            if not usable_by(row["owner"], row["agents"], owner):
                raise SecretUnavailable(
                    f"secret {name!r} is not {owner}'s and not shared with it (only the admin"
                    " shares a secret, naming the agents that may use it)"
                )
            if not allows(row["allowed_tools"], address):
                allowed = ", ".join(row["allowed_tools"])
                raise SecretUnavailable(
                    f"secret {name!r} may not be sent to {address} (allowed: {allowed})"
                )
            values[name] = await self._value(name, row["ciphertext"])
        return values

    async def _value(self, name: str, ciphertext: str) -> str:
        if not self.reveal:
            return f"<secret {name}>"
        if self.box is None:
            raise SecretUnavailable("secrets are not configured here (set ORDINAUT_SECRET_KEY)")
        try:
            return self.box.open(name, ciphertext)
        except SecretKeyError as exc:
            raise SecretUnavailable(str(exc)) from None
