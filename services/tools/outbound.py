"""Outbound HTTP that can only reach allowed addresses (see `domain.outbound`).

The check sits where the socket is opened: the host is resolved once, every address it
resolves to is checked, and the connection goes to the checked address. So a redirect, a
proxy-less absolute URL or a DNS answer that changes between check and connect (rebinding)
cannot slip past it, and a refused address is never connected to. TLS still verifies the
certificate against the host name (httpcore passes it as the server name separately).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from domain.outbound import Network, refusal


class OutboundRefused(Exception):
    """A request would have reached an address the outbound rule refuses."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        shown = host if host == address else f"{host} ({address})"
        super().__init__(f"refused to connect to {shown}: {reason}; an admin can allow it "
                         "with ORDINAUT_OUTBOUND_ALLOW")  # fmt: skip


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, allowed: tuple[Network, ...]) -> None:
        self._allowed = allowed
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for address in addresses:
            reason = refusal(address, self._allowed)
            if reason is not None:  # one bad answer taints the name: refuse it whole
                raise OutboundRefused(host, address, reason)
        return await self._inner.connect_tcp(
            addresses[0], port, timeout=timeout, local_address=local_address,
            socket_options=socket_options,
        )  # fmt: skip

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused(path, path, "unix sockets are not reachable from pipelines")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(
    allowed: tuple[Network, ...], limits: httpx.Limits
) -> httpx.AsyncBaseTransport:
    """An httpx transport whose connections pass the outbound rule."""
    transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    # httpx takes no network backend, so its pool is rebuilt with ours, same settings.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_GuardedBackend(allowed),
    )
    return transport
