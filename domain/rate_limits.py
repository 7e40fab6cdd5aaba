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


# Far beyond any sensible limit, and small enough that a bucket's life (burst / rate, the time
# it takes to fill again: at most 1e6 * 86400 s) is a whole number of milliseconds Redis takes.
MAX_BURST = 1_000_000
MAX_RATE = 1_000_000.0  # per second
MIN_RATE = 1 / 86_400  # one a day


@dataclass(frozen=True)
class RateLimit:
    """``rate`` requests per second on average, up to ``burst`` at once after a quiet spell."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if _refusal(self.rate, self.burst) is not None:
            raise ValueError(f"a rate limit {_refusal(self.rate, self.burst)}")

    @property
    def refill_seconds(self) -> float:
        """How long an empty bucket takes to fill again (after that it may be forgotten)."""
        return self.burst / self.rate


def _refusal(rate: float, burst: int) -> str | None:
    if not (math.isfinite(rate) and MIN_RATE <= rate <= MAX_RATE):
        return f"needs a rate between 1 a day and {MAX_RATE:.0f}/s"
    if not 1 <= burst <= MAX_BURST:
        return f"needs a burst between 1 and {MAX_BURST}"
    return None


def parse_rate_limit(text: str, field: str) -> RateLimit:
    """``"20/s burst 40"``, ``"600/min"`` (burst defaults to the rate per second, at least 1);
    a rate between one a day and MAX_RATE a second, a burst of at most MAX_BURST."""
    match = _LIMIT.match(text.lower())
    unit = _UNITS.get(match.group("unit")) if match else None
    if match is None or unit is None:
        raise RuleViolation(field, "must look like '20/s burst 40' (per s, min or hour)")
    rate = float(match.group("n")) / unit
    burst = int(match.group("burst") or max(1, math.ceil(rate)))
    refused = _refusal(rate, burst)
    if refused is not None:
        raise RuleViolation(field, refused)
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
