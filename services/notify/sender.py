"""One signed POST of a notification to a webhook."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import msgspec

from domain.outbound import Network
from domain.webhook_signing import SIGNATURE_HEADER, sign, webhook_secret
from domain.webhooks import AttemptResult
from services.tools.outbound import guarded_transport, outbound_failure

MAX_ERROR_CHARS = 500


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """The JSON body: the event as stored, and which delivery this is."""

    delivery_id: str
    agent_id: str
    position: int
    stream: str
    version: int
    type: str
    recorded_at: str
    data: msgspec.Raw
    meta: msgspec.Raw


def notification_body(agent_id: str, fields: dict[bytes, bytes]) -> tuple[int, str, bytes]:
    """The position, type and JSON body for an entry of the events stream."""
    position = int(fields[b"position"])
    body = Notification(
        delivery_id=f"{agent_id}-{position}",
        agent_id=agent_id,
        position=position,
        stream=fields[b"stream"].decode(),
        version=int(fields[b"version"]),
        type=fields[b"type"].decode(),
        recorded_at=fields[b"recorded_at"].decode(),
        data=msgspec.Raw(fields[b"data"]),
        meta=msgspec.Raw(fields[b"meta"]),
    )
    return position, body.type, msgspec.json.encode(body)


def webhook_client(timeout_seconds: float, allowed: tuple[Network, ...]) -> httpx.AsyncClient:
    """The notifier's HTTP client: it reaches only what the outbound rule allows (the same
    rule as http tools: public addresses plus ORDINAUT_OUTBOUND_ALLOW), follows no redirect."""
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30)
    return httpx.AsyncClient(
        transport=guarded_transport(allowed, limits),
        timeout=httpx.Timeout(timeout_seconds),
        follow_redirects=False,
        headers={"User-Agent": "ordinaut-webhooks/0.1"},
    )


class WebhookSender:
    """Signs with the agent's secret and reports what happened, never raising for HTTP trouble."""

    def __init__(
        self, client: httpx.AsyncClient, key: bytes, clock: Callable[[], float] = time.time
    ) -> None:
        self.client, self.key, self.clock = client, key, clock

    async def send(
        self, agent_id: str, url: str, body: bytes, event_type: str, attempt: int
    ) -> AttemptResult:
        """POST ``body``; the result holds the status or why there was none."""
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign(webhook_secret(self.key, agent_id), body, int(self.clock())),
            "Ordinaut-Event-Type": event_type,
            "Ordinaut-Attempt": str(attempt),
        }
        started = time.monotonic()
        try:
            response = await self.client.post(url, content=body, headers=headers)
        except Exception as exc:  # DNS, the outbound rule, the network: a failed attempt
            failure = outbound_failure(exc, _origin(url))
            # a refused address stays refused: retrying cannot help
            reason = failure.message[:MAX_ERROR_CHARS]
            return AttemptResult(None, reason, _ms(started), final=failure.refused)
        return AttemptResult(response.status_code, None, _ms(started))


def _origin(url: str) -> str:
    """Where the webhook is, without the path, query or credentials it may carry."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000
