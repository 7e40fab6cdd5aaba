"""Encryption of secrets at rest: AES-256-GCM under one deployment key.

The key comes from ORDINAUT_SECRET_KEY (32 bytes, base64url), or is generated once into
<data-dir>/secret-key like the admin token, so `ordinaut up` works with nothing configured.
Each ciphertext is bound to its secret's name (associated data), so a ciphertext copied onto
another name does not decrypt. `cryptography` is used because the standard library has no
authenticated cipher, and it is the maintained, audited choice in Python.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.runtime.key_file import read_or_create

KEY_FILE = "secret-key"
_VERSION = "v1."


class SecretKeyError(ValueError):
    """The key is malformed, or a ciphertext was sealed under another key."""


def parse_key(text: str) -> bytes:
    """32 bytes from base64url text (with or without padding)."""
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raise SecretKeyError("must be 32 bytes in base64url") from None
    if len(key) != 32:
        raise SecretKeyError(f"must be 32 bytes in base64url, not {len(key)} bytes")
    return key


def new_key_text() -> str:
    """A fresh random key, as ORDINAUT_SECRET_KEY expects it."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def load_secret_key(configured: str | None, data_dir: Path) -> bytes:
    """The configured key, else the one in the data dir, creating it (mode 0600) if absent."""
    if configured is not None:
        return parse_key(configured)
    return parse_key(read_or_create(data_dir / KEY_FILE, new_key_text))


class SecretBox:
    """Seals and opens secret values under one key."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, name: str, value: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, value.encode(), _bound(name))
        return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, name: str, ciphertext: str) -> str:
        if not ciphertext.startswith(_VERSION):
            raise SecretKeyError(f"secret {name!r} has an unknown ciphertext format")
        raw = base64.urlsafe_b64decode(ciphertext[len(_VERSION) :])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], _bound(name)).decode()
        except InvalidTag:
            raise SecretKeyError(
                f"secret {name!r} was stored under another key (every process needs the same"
                " ORDINAUT_SECRET_KEY)"
            ) from None


def _bound(name: str) -> bytes:
    return f"ordinaut-secret:{name}".encode()
