"""Per-agent API rate limits: token buckets in Redis, shared by every API process.

One Lua script refills and takes from a bucket atomically on Redis's own clock (``TIME``),
so API processes on different hosts agree without trusting each other's clocks. Redis is
the fast path, never a gate: if it is away the request goes through (fail open) and a
warning is logged, at most once per quiet spell.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping
from typing import Any

import redis.asyncio as redis
import structlog
from litestar.connection import ASGIConnection
from litestar.exceptions import TooManyRequestsException
from redis.exceptions import RedisError, ResponseError

from domain.errors import RuleViolation
from domain.rate_limits import (
    RateLimit,
    RateLimits,
    parse_rate_limit,
    retry_after_header,
    route_group,
)

# The maths of domain.rate_limits.take, in one atomic step. Keys expire once full again.
_TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then tokens, at = burst, now end
if now > at then tokens = math.min(burst, tokens + (now - at) * rate); at = now end
local allowed, wait = 0, 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {allowed, tostring(wait)}
"""
QUIET_AFTER_FAILURE_SECONDS = 2.0
DEFAULT_PREFIX = "ordinaut:ratelimit:"

log = structlog.get_logger(__name__)


class RateLimiter:
    """Takes one token per request from the caller's bucket for the request's route group."""

    def __init__(
        self, client: redis.Redis, limits: RateLimits, *, prefix: str = DEFAULT_PREFIX
    ) -> None:
        self.limits, self.prefix = limits, prefix
        self._take = client.register_script(_TAKE)
        self._quiet_until = self._warned_until = 0.0

    async def wait_needed(
        self, agent: str, group: str, override: RateLimit | None = None
    ) -> float | None:
        """None if the request may go ahead; otherwise seconds until it would be allowed."""
        limit = override or self.limits.for_group(group)
        if limit is None or time.monotonic() < self._quiet_until:
            return None
        # The key lives until its bucket is full again, in whole milliseconds (computed here:
        # Lua would print a large number as 1e+14, which PEXPIRE refuses).
        expire_ms = math.ceil(limit.refill_seconds * 1000) + 1000
        try:
            allowed, wait = await self._take(
                keys=[f"{self.prefix}{group}:{agent}"],
                args=[repr(limit.rate), limit.burst, expire_ms],
            )
        except ResponseError as exc:
            # Redis is there but refused the script (out of memory, read-only, a bug): this
            # request goes through; other requests still try, so no quiet spell.
            if time.monotonic() >= self._warned_until:
                self._warned_until = time.monotonic() + QUIET_AFTER_FAILURE_SECONDS
                log.warning(
                    "rate limit not enforced: Redis refused the rate-limit script",
                    group=group,
                    agent=agent,
                    limit=f"{limit.rate}/s burst {limit.burst}",
                    reason=str(exc),
                )
            return None
        except (RedisError, OSError) as exc:
            self._quiet_until = time.monotonic() + QUIET_AFTER_FAILURE_SECONDS
            log.warning("rate limits not enforced: Redis unavailable", reason=str(exc))
            return None
        return None if int(allowed) == 1 else float(wait)


async def enforce(
    connection: ASGIConnection[Any, Any, Any, Any], agent: str, overrides: Mapping[str, str]
) -> None:
    """Raise a 429 (with Retry-After) if ``agent`` is over its limit for this route's group.

    ``overrides`` are the agent's own limits by group (validated when they were set).
    """
    limiter: RateLimiter | None = connection.app.state.get("rate_limiter")
    group = route_group(str(connection.scope.get("method", "GET")), connection.scope["path"])
    if limiter is None or group is None:
        return
    wait = await limiter.wait_needed(agent, group, _override(group, overrides.get(group)))
    if wait is not None:
        raise TooManyRequestsException(
            f"too many {group} requests; try again in {retry_after_header(wait)} s",
            headers={"Retry-After": retry_after_header(wait)},
        )


@functools.lru_cache(maxsize=1024)
def _override(group: str, text: str | None) -> RateLimit | None:
    """An agent's own limit for ``group`` (parsed once per text). One set before limits were
    bounded may no longer parse: the API's default then applies, and a warning says so once
    (an absurd burst meant no limit at all, which is not kept)."""
    if not text:
        return None
    try:
        return parse_rate_limit(text, f"rate_limits.{group}")
    except RuleViolation as exc:
        log.warning(
            "an agent's rate limit is out of bounds; the default applies",
            limit=text,
            reason=str(exc),
        )
        return None
