"""The webhook key agents' secrets derive from: ORDINAUT_WEBHOOK_KEY, or generated once into
<data-dir>/webhook-key. Every process that signs or shows secrets must use the same key."""

from __future__ import annotations

import secrets
from pathlib import Path

from services.runtime.key_file import read_or_create

KEY_FILE = "webhook-key"


def load_webhook_key(configured: str | None, data_dir: Path) -> bytes:
    """The configured key, else the one in the data dir, creating it (mode 0600) if absent."""
    if configured is not None:
        return configured.encode()
    return read_or_create(data_dir / KEY_FILE, lambda: secrets.token_urlsafe(32)).encode()
