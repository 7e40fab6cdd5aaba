"""The webhook key agents' secrets derive from: ORDINAUT_WEBHOOK_KEY, or generated once into
<data-dir>/webhook-key. Every process that signs or shows secrets must use the same key."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

KEY_FILE = "webhook-key"


def load_webhook_key(configured: str | None, data_dir: Path) -> bytes:
    """The configured key, else the one in the data dir, creating it (mode 0600) if absent."""
    if configured is not None:
        return configured.encode()
    path = data_dir / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once must not write two different keys.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip().encode()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip().encode()
