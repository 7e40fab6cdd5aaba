"""Webhook delivery rules: which events an agent is told about, and what an attempt records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain.events import Event, WebhookAttempted, WebhookDelivered, WebhookFailed

# budget.exceeded: a run stopped by a budget tells its owner which budget and how much.
DEFAULT_NOTIFY_EVENTS: frozenset[str] = frozenset(
    {"run.succeeded", "run.dead", "approval.requested", "budget.exceeded"}
)


def wants(event_type: str, chosen: Sequence[str] | None) -> bool:
    """Whether an agent that chose ``chosen`` (None = the defaults) is told about the type."""
    return event_type in (DEFAULT_NOTIFY_EVENTS if chosen is None else chosen)


def retry_delay(attempt: int, base_seconds: float, max_seconds: float) -> float:
    """How long to wait after failed attempt number ``attempt`` (1, 2 ...): doubling, capped."""
    return float(min(base_seconds * 2 ** (attempt - 1), max_seconds))


@dataclass(frozen=True)
class DeliveryState:
    """What the delivery stream says so far: attempts made and whether it is over."""

    attempts: int = 0
    finished: bool = False


def evolve(state: DeliveryState, event: Event) -> DeliveryState:
    """The state after one recorded event."""
    match event:
        case WebhookAttempted(attempt=attempt):
            return DeliveryState(max(state.attempts, attempt), state.finished)
        case WebhookDelivered() | WebhookFailed():
            return DeliveryState(state.attempts, True)
    return state


@dataclass(frozen=True)
class AttemptResult:
    """What one HTTP request gave: a status, or an error without one. ``final``: trying
    again cannot help (the address is refused), so this attempt is the last."""

    status: int | None
    error: str | None
    duration_ms: float
    final: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def record_attempt(
    agent_id: str,
    position: int,
    event_type: str,
    attempt: int,
    result: AttemptResult,
    max_attempts: int,
) -> list[Event]:
    """The events an attempt records: always ``webhook.attempted``, then ``delivered`` on a
    2xx or ``failed`` once ``max_attempts`` are spent (or the failure is final)."""
    error = result.error
    if error is None and not result.ok:
        error = f"HTTP {result.status}"
    events: list[Event] = [
        WebhookAttempted(
            agent_id=agent_id,
            position=position,
            event_type=event_type,
            attempt=attempt,
            status=result.status,
            error=error,
            duration_ms=round(result.duration_ms, 3),
        )
    ]
    if result.ok:
        events.append(WebhookDelivered(agent_id=agent_id, position=position, attempt=attempt))
    elif attempt >= max_attempts or result.final:
        events.append(
            WebhookFailed(
                agent_id=agent_id, position=position, attempts=attempt, error=error or "failed"
            )
        )
    return events
