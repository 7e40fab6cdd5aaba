"""Webhook signatures: ``Ordinaut-Signature: t=<unix ts>,v1=<hex HMAC-SHA256("<ts>.<body>")>``.

Each agent's secret is derived from the server's webhook key, so no secret is ever stored
(not in the event log, not in a table): whoever holds the key can recompute it.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Ordinaut-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


def webhook_secret(key: bytes, agent_id: str) -> str:
    """The secret an agent verifies its webhooks with (hex)."""
    return hmac.new(key, b"ordinaut-webhook:" + agent_id.encode(), hashlib.sha256).hexdigest()


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and is at most ``tolerance`` s old
    (which makes a captured request useless for replay later)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(parts.get("v1", ""), _digest(secret, timestamp, body))
