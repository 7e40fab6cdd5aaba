"""Token buckets: how fast a caller may go, and whether one more request fits right now.

The API keeps its buckets in Redis (one atomic script, so every API process shares them);
this module is the reference for that script's maths and the parser of limit settings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from domain.errors import RuleViolation

ROUTE_GROUPS = ("commands", "reads", "events")
_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}
_LIMIT = re.compile(
    r"^\s*(?P<n>\d+(?:\.\d+)?)\s*/\s*(?P<unit>[a-z]+)(?:\s+burst\s+(?P<burst>\d+))?\s*$"
)


@dataclass(frozen=True)
class RateLimit:
    """``rate`` requests per second on average, up to ``burst`` at once after a quiet spell."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0) or self.burst < 1:
            raise ValueError("a rate limit needs a rate above 0 and a burst of at least 1")


def parse_rate_limit(text: str, field: str) -> RateLimit:
    """``"20/s burst 40"``, ``"600/min"`` (burst defaults to the rate per second, at least 1)."""
    match = _LIMIT.match(text.lower())
    unit = _UNITS.get(match.group("unit")) if match else None
    if match is None or unit is None:
        raise RuleViolation(field, "must look like '20/s burst 40' (per s, min or hour)")
    rate = float(match.group("n")) / unit
    burst = int(match.group("burst") or max(1, math.ceil(rate)))
    if rate <= 0 or burst < 1:
        raise RuleViolation(field, "needs a rate above 0 and a burst of at least 1")
    return RateLimit(rate, burst)


@dataclass(frozen=True)
class Bucket:
    """What is left in a bucket (``tokens``) as of ``at`` (seconds on some shared clock)."""

    tokens: float
    at: float


@dataclass(frozen=True)
class Taken:
    """The answer for one request: allowed or not, the bucket after, and when to try again."""

    allowed: bool
    bucket: Bucket
    retry_after: float


def take(bucket: Bucket | None, now: float, limit: RateLimit) -> Taken:
    """Refill for the time passed (never above ``burst``), then take one token if there is one.

    A clock that went backwards refills nothing. ``retry_after`` is how long until one whole
    token is back (0 when allowed).
    """
    if bucket is None:
        bucket = Bucket(float(limit.burst), now)
    elapsed = max(0.0, now - bucket.at)
    tokens = min(float(limit.burst), bucket.tokens + elapsed * limit.rate)
    at = max(now, bucket.at)
    if tokens >= 1.0:
        return Taken(True, Bucket(tokens - 1.0, at), 0.0)
    return Taken(False, Bucket(tokens, at), (1.0 - tokens) / limit.rate)


def retry_after_header(seconds: float) -> str:
    """Retry-After in whole seconds, at least 1 (rounding down would invite an early retry)."""
    return str(max(1, math.ceil(seconds)))


def route_group(method: str, path: str) -> str | None:
    """Which bucket a request draws from; None for routes that are never limited (health)."""
    if path == "/health" or path.startswith("/health/"):
        return None
    if method in ("GET", "HEAD", "OPTIONS"):
        return "reads"
    if path.rstrip("/") == "/events":
        return "events"
    return "commands"


@dataclass(frozen=True)
class RateLimits:
    """The API's limit per route group for each agent (None: that group is not limited).

    Generous by default: they stop a runaway agent, not a busy one.
    """

    commands: RateLimit | None = RateLimit(500.0, 1000)
    reads: RateLimit | None = RateLimit(1000.0, 2000)
    events: RateLimit | None = RateLimit(1000.0, 2000)

    def for_group(self, group: str) -> RateLimit | None:
        """The limit of ``group`` (one of ROUTE_GROUPS)."""
        limit: RateLimit | None = getattr(self, group)
        return limit


# Failed authentications each client address may make (ORDINAUT_AUTH_FAILURE_LIMIT): enough
# for a person mistyping a token, far too few to try tokens in bulk.
AUTH_FAILURES = RateLimit(20 / 60, 20)


def next_slot(slots: Sequence[float], now: float, calls: int, per_seconds: float) -> float:
    """When the next call of a tool limited to ``calls`` per ``per_seconds`` may start.

    ``slots`` are the start times already handed out (ascending; those older than one window
    may be left out). The answer is the earliest time, not before ``now``, at which the call
    is at most the ``calls``-th in any window: now, or one window after the call ``calls``
    back. Handed out in order, slots never go back in time, so waiting callers keep theirs.
    """
    if len(slots) < calls:
        return now
    return max(now, slots[-calls] + per_seconds)
