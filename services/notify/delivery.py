"""Delivering one event to one agent: attempt, record, wait, until delivered or out of tries.

Every attempt starts from the delivery's record, so a delivery resumed by another notifier
(or after a restart) continues the count and never re-sends what was delivered.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import asyncpg
import structlog

from domain.events import event_type as tag_of
from domain.webhooks import AttemptResult, record_attempt, retry_delay
from projections.base import ProjectionSet
from services.notify.config import NotifierConfig
from services.notify.recipients import Recipient
from services.notify.records import delivery_state, record
from services.notify.sender import WebhookSender, notification_body
from services.runtime.metrics import WEBHOOK_DELIVERIES
from services.runtime.tracing import Attributes, span
from services.store.group import GroupCommitter

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class _Delivery:
    """One event on its way to one agent."""

    recipient: Recipient
    position: int
    event_type: str
    body: bytes
    correlation_id: str | None
    traceparent: str | None = None  # of the event: the delivery continues its trace


@dataclass
class Deliverer:
    """Runs deliveries with bounded concurrency: ``per_destination`` requests at once per
    host and ``max_requests`` in all. A delivery waiting for its next try holds no slot."""

    pool: asyncpg.Pool
    projections: ProjectionSet
    sender: WebhookSender
    config: NotifierConfig
    _slots: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    _requests: asyncio.Semaphore | None = None
    _committer: GroupCommitter = field(init=False)

    def __post_init__(self) -> None:
        # Two lanes: the pool's other connections stay free for reading delivery states.
        self._committer = GroupCommitter(self.pool, self.projections, lanes=2)

    async def deliver(self, recipient: Recipient, fields: dict[bytes, bytes]) -> None:
        """Attempt until the delivery is over (delivered, or failed for good)."""
        position, event_type, body = notification_body(recipient.agent_id, fields)
        meta = json.loads(fields[b"meta"])
        delivery = _Delivery(
            recipient,
            position,
            event_type,
            body,
            meta.get("correlation_id"),
            meta.get("traceparent"),
        )
        while not await self._attempt(delivery):
            pass

    async def _attempt(self, d: _Delivery) -> bool:
        """One attempt unless the delivery is over; True once it is over."""
        agent_id = d.recipient.agent_id
        state, version = await delivery_state(self.pool, agent_id, d.position)
        if state.finished:
            return True
        attempt = state.attempts + 1
        result = await self._send(d, attempt)
        WEBHOOK_DELIVERIES.labels("delivered" if result.ok else "failed_attempt").inc()
        events = record_attempt(
            agent_id, d.position, d.event_type, attempt, result, self.config.max_attempts
        )
        recorded = await record(
            self._committer,
            agent_id,
            d.position,
            events,
            expected_version=version,
            correlation_id=d.correlation_id,
        )
        if not recorded:
            return False  # another notifier recorded an attempt meanwhile: look again
        if len(events) > 1:
            _log_outcome(agent_id, d.position, tag_of(events[-1]), result.error)
            return True
        delay = retry_delay(
            attempt, self.config.backoff_base_seconds, self.config.backoff_max_seconds
        )
        await asyncio.sleep(delay)  # only this delivery waits; its slots are free
        return False

    async def _send(self, d: _Delivery, attempt: int) -> AttemptResult:
        if self._requests is None:
            self._requests = asyncio.Semaphore(self.config.max_requests)
        host = urlsplit(d.recipient.url).netloc
        slot = self._slots.setdefault(host, asyncio.Semaphore(self.config.per_destination))
        traced: Attributes = {
            "ordinaut.agent.id": d.recipient.agent_id,
            "ordinaut.event.type": d.event_type,
            "ordinaut.event.position": d.position,
            "ordinaut.webhook.attempt": attempt,
        }
        async with slot, self._requests:
            with span("ordinaut.webhook", traced, kind="client", parent=d.traceparent):
                return await self.sender.send(
                    d.recipient.agent_id, d.recipient.url, d.body, d.event_type, attempt
                )


def _log_outcome(agent_id: str, position: int, outcome: str, error: str | None) -> None:
    if outcome == "webhook.failed":
        log.warning("webhook failed for good", agent_id=agent_id, position=position, error=error)
    else:
        log.info("webhook delivered", agent_id=agent_id, position=position)
