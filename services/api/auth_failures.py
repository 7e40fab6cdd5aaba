"""Failed authentications per client address: one token bucket each, in this process's memory.

Only a failure (an unknown or revoked token, on the API or at /ui/login) takes from its
address's bucket, and a valid token is never refused by it, so a client that authenticates is
never slowed. Once an address's failures outrun the limit, its next failures get 429 with
Retry-After instead of 401 until the bucket refills. Kept per API process (several API
processes each allow the limit); the maths is domain.rate_limits.take, as for agents' limits.
The address is the connection's peer: behind a reverse proxy every client shares the proxy's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import TooManyRequestsException

from domain.rate_limits import Bucket, RateLimit, retry_after_header, take

# Addresses remembered at most; the least recently failing are forgotten first.
MAX_ADDRESSES = 10_000


class FailedAuthLimiter:
    """How many failed authentications each client address may make (None: unlimited)."""

    def __init__(
        self,
        limit: RateLimit | None,
        *,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.max_addresses, self._clock = limit, max_addresses, clock
        self._buckets: dict[str, Bucket] = {}

    def failed(self, address: str) -> float | None:
        """Count one failure from ``address``: None while within the limit, else the seconds
        until its next failure would be."""
        if self.limit is None:
            return None
        taken = take(self._buckets.pop(address, None), self._clock(), self.limit)
        self._buckets[address] = taken.bucket  # re-inserted: dicts keep the newest last
        while len(self._buckets) > self.max_addresses:
            del self._buckets[next(iter(self._buckets))]
        return None if taken.allowed else taken.retry_after


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The peer's address (``unknown`` when the server gives none)."""
    client = connection.client
    return client.host if client is not None else "unknown"


def too_many_failures(connection: ASGIConnection[Any, Any, Any, Any]) -> float | None:
    """Count a failed authentication from this connection's address (see FailedAuthLimiter)."""
    limiter: FailedAuthLimiter | None = connection.app.state.get("auth_failures")
    return None if limiter is None else limiter.failed(client_address(connection))


def refuse_if_too_many(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Count a failed authentication; raise a 429 (with Retry-After) if over the limit."""
    wait = too_many_failures(connection)
    if wait is not None:
        seconds = retry_after_header(wait)
        raise TooManyRequestsException(
            f"too many failed authentications from this address; try again in {seconds} s",
            headers={"Retry-After": seconds},
        )
