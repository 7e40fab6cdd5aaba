"""A local webhook receiver for notifier tests: verifies every signature and answers by path.

/ok: 200. /flaky/N: 500 for the first N requests of each delivery, then 200. /down: 503.
/hang: answers 500 only after 2 s (the notifier's timeout is shorter).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from domain.webhook_signing import SIGNATURE_HEADER, verify


@dataclass
class Delivery:
    """One request the receiver got."""

    path: str
    raw: bytes
    body: dict[str, Any]
    headers: dict[str, str]
    verified: bool
    at: float
    wall: float = field(default_factory=time.time)  # to compare with the database's clock


@dataclass
class WebhookReceiver:
    """An ASGI app; ``secrets`` maps agent id -> the secret its signatures must verify with."""

    secrets: dict[str, str] = field(default_factory=dict)
    received: list[Delivery] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        body = json.loads(raw)
        secret = self.secrets.get(body.get("agent_id"), "")
        signature = headers.get(SIGNATURE_HEADER.lower(), "")
        verified = verify(secret, signature, raw, now=time.time())
        path: str = scope["path"]
        self.received.append(Delivery(path, raw, body, headers, verified, time.monotonic()))
        status = await self._status(path, body) if verified else 401
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def _status(self, path: str, body: dict[str, Any]) -> int:
        if path == "/ok":
            return 200
        if path.startswith("/flaky/"):
            tries = sum(1 for d in self.received if d.body["delivery_id"] == body["delivery_id"])
            return 500 if tries <= int(path.rsplit("/", 1)[1]) else 200
        if path == "/hang":
            await asyncio.sleep(2)
            return 500
        return 503

    def per_delivery(self, path: str) -> Counter[str]:
        """How many requests each delivery id got at ``path``."""
        return Counter(d.body["delivery_id"] for d in self.received if d.path == path)
