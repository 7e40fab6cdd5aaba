"""Dashboard sessions: a random id in an HttpOnly, SameSite=Strict cookie; the rest in a table."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from litestar.datastructures import Cookie

from services.application.principal import Principal, principal_for_digest

COOKIE = "ordinaut_session"
# The sign-in form's own CSRF token (double submit): there is no session to hold one yet.
LOGIN_COOKIE = "ordinaut_login_csrf"
LIFETIME = timedelta(hours=12)
PATH = "/ui"

_OPEN = """
INSERT INTO ui_session (id_sha256, token_sha256, label, csrf, expires_at)
VALUES ($1, $2, coalesce((SELECT name FROM agent WHERE id = $3), $3), $4, now() + $5::interval)
"""
_FIND = """
SELECT token_sha256, label, csrf FROM ui_session WHERE id_sha256 = $1 AND expires_at > now()
"""


@dataclass(frozen=True)
class UiSession:
    """A signed-in visitor: who they act as, and the token their forms must echo."""

    principal: Principal
    csrf: str
    label: str = ""  # the agent's name (or admin), for the page header

    def can(self, scope: str) -> bool:
        """True if the token signed in with holds ``scope``."""
        return self.principal.allows(scope)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def open_session(pool: Any, token_digest: bytes, actor: str) -> str:
    """Record a session for ``actor``'s token with this digest; the id to put in the cookie."""
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM ui_session WHERE expires_at < now()")
        await conn.execute(_OPEN, _digest(session_id), token_digest.hex(), actor, csrf, LIFETIME)
    return session_id


async def find_session(pool: Any, admin_hash: bytes, session_id: str) -> UiSession | None:
    """The live session with this id, if its token is still valid (a revoked token ends it)."""
    if not 1 <= len(session_id) <= 100:
        return None
    row = await pool.fetchrow(_FIND, _digest(session_id))
    if row is None:
        return None
    principal = await principal_for_digest(bytes.fromhex(row["token_sha256"]), admin_hash, pool)
    return None if principal is None else UiSession(principal, row["csrf"], row["label"])


async def close_session(pool: Any, session_id: str) -> None:
    """Forget the session (signing out)."""
    await pool.execute("DELETE FROM ui_session WHERE id_sha256 = $1", _digest(session_id))


def session_cookie(value: str, *, secure: bool, max_age: int | None = None) -> Cookie:
    """The session cookie: unreadable by scripts, never sent by other sites, only to /ui."""
    seconds = int(LIFETIME.total_seconds()) if max_age is None else max_age
    return Cookie(
        key=COOKIE,
        value=value,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=secure,
        max_age=seconds,
    )


def login_cookie(value: str, *, secure: bool, max_age: int = 3600) -> Cookie:
    """The sign-in form's CSRF cookie (lives as long as a form may stay open)."""
    return Cookie(
        key=LOGIN_COOKIE,
        value=value,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=secure,
        max_age=max_age,
    )
