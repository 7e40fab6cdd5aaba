"""Who calls a use case: the principal behind a token, whichever interface the call came in by."""

from __future__ import annotations

import hmac
from typing import Any

import msgspec

from services.runtime.admin_token import token_hash

ADMIN_SCOPE = "admin"
_limits = msgspec.json.Decoder(dict[str, str])


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: the actor recorded on every event they cause, and what they may do."""

    actor: str
    scopes: frozenset[str]
    # API rate limits the admin set for this agent, by route group (see agent.limits_set).
    rate_limits: dict[str, str] = msgspec.field(default_factory=dict)

    def allows(self, scope: str) -> bool:
        """True if the scope was granted (admin holds every scope)."""
        return ADMIN_SCOPE in self.scopes or scope in self.scopes

    @property
    def reader(self) -> str | None:
        """Whose events this principal may read: None for the admin (all of them), else
        the agent's own (see domain/ownership.py)."""
        return None if ADMIN_SCOPE in self.scopes else self.actor


# One indexed lookup per request and no cache, so a revocation holds from the next request on.
# Looking up a hash is not a timing leak: its value says nothing about any token an attacker
# could guess from it.
_AGENT_BY_DIGEST = """
SELECT a.id, a.scopes, l.rate_limits::text AS rate_limits
FROM agent_token t JOIN agent a ON a.id = t.agent_id
LEFT JOIN agent_limits l ON l.agent_id = a.id
WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL
"""


async def principal_for(token: str, admin_hash: bytes, pool: Any) -> Principal | None:
    """The admin, or the agent holding this live token; None for an unknown or revoked one."""
    return await principal_for_digest(token_hash(token), admin_hash, pool)


async def principal_for_digest(digest: bytes, admin_hash: bytes, pool: Any) -> Principal | None:
    """As ``principal_for``, from the token's digest (what a dashboard session keeps)."""
    if hmac.compare_digest(digest, admin_hash):
        return Principal("admin", frozenset({ADMIN_SCOPE}))
    row = await pool.fetchrow(_AGENT_BY_DIGEST, digest.hex())
    if row is None:
        return None
    limits = _limits.decode(row["rate_limits"]) if row["rate_limits"] else {}
    return Principal(row["id"], frozenset(row["scopes"]), limits)
