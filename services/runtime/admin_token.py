"""The admin token: from ORDINAUT_ADMIN_TOKEN, or generated once into <data-dir>/admin-token."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from services.runtime.key_file import read_or_create

TOKEN_FILE = "admin-token"  # noqa: S105 - a file name, not a secret


@dataclass(frozen=True)
class AdminToken:
    """The admin token's hash (the token itself is never kept or logged) and where it is."""

    sha256: bytes
    path: Path | None


def token_hash(token: str) -> bytes:
    """The digest tokens are compared by."""
    return hashlib.sha256(token.encode()).digest()


def load_admin_token(configured: str | None, data_dir: Path) -> AdminToken:
    """The configured token, else the one in the data dir, creating it (mode 0600) if absent."""
    if configured is not None:
        return AdminToken(token_hash(configured), None)
    path = data_dir / TOKEN_FILE
    token = read_or_create(path, lambda: secrets.token_urlsafe(32))
    return AdminToken(token_hash(token), path)
