"""How the notifier reads the events stream and delivers webhooks."""

from __future__ import annotations

from dataclasses import dataclass

from domain.outbound import DEFAULT_ALLOW, Network, parse_allow_list
from services.channels.events import EVENTS_STREAM

NOTIFIER_GROUP = "ordinaut:notifier"


@dataclass(frozen=True)
class NotifierConfig:
    """How the notifier reads and delivers."""

    stream: str = EVENTS_STREAM
    group: str = NOTIFIER_GROUP
    # Where a new group starts: "$" = only events published from now on.
    start_id: str = "$"
    max_attempts: int = 8
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 300.0
    timeout_seconds: float = 10.0
    per_destination: int = 4  # requests at once to one host
    max_requests: int = 64  # requests at once in all
    max_in_flight: int = 1000  # deliveries (entries) held at once before reading pauses
    reclaim_idle_seconds: float = 60.0
    block_ms: int = 1000
    # Where webhooks may go besides public addresses (ORDINAUT_OUTBOUND_ALLOW).
    outbound_allow: tuple[Network, ...] = parse_allow_list(DEFAULT_ALLOW)
