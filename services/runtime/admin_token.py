"""The admin token: from ORDINAUT_ADMIN_TOKEN, or generated once into <data-dir>/admin-token."""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

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
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once must not write two different tokens.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return AdminToken(token_hash(path.read_text().strip()), path)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    return AdminToken(token_hash(path.read_text().strip()), path)
