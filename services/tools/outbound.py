"""The one outbound guard: every connection a pipeline, a webhook or an MCP server import makes
reaches only allowed addresses (see `domain.outbound`), and every way it can fail is named.

The check sits where the socket is opened: the host is resolved once, every address it
resolves to is checked, and the connection goes to the checked address. So a redirect, a
proxy-less absolute URL or a DNS answer that changes between check and connect (rebinding)
cannot slip past it, and a refused address is never connected to. TLS still verifies the
certificate against the host name (httpcore passes it as the server name separately).

Two HTTP stacks use it: httpx (http tools, ``http.request``, webhooks) and httpx2 (the MCP
SDK's streamable HTTP client). A name that does not resolve fails as the stack's own connect
error, so callers see one kind of network failure; `outbound_failure` turns any exception
from an outbound call into the message and retry verdict that get recorded.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable
from typing import Any, NamedTuple

import httpcore
import httpcore2
import httpx
import httpx2

from domain.outbound import Network, refusal
from services.runtime.tracing import inject

_MAX_DETAIL = 300


class OutboundRefused(Exception):
    """A request would have reached an address the outbound rule refuses."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        shown = host if host == address else f"{host} ({address})"
        super().__init__(
            f"refused to connect to {shown}: {reason}; an admin can allow it "
            "with ORDINAUT_OUTBOUND_ALLOW"
        )


class OutboundFailure(NamedTuple):
    """What an outbound call's failure is recorded as."""

    message: str
    retryable: bool
    # The address itself is the problem (refused by the rule): no later try can help.
    refused: bool = False


async def checked_address(host: str, port: int, allowed: tuple[Network, ...]) -> str:
    """The address to connect to for ``host``; OutboundRefused if any answer is refused,
    OSError (a ``socket.gaierror`` or the like) if the name does not resolve."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:  # a label too long for DNS: it cannot resolve either
        raise socket.gaierror(socket.EAI_NONAME, f"not a valid host name ({exc})") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        reason = refusal(address, allowed)
        if reason is not None:  # one bad answer taints the name: refuse it whole
            raise OutboundRefused(host, address, reason)
    return addresses[0]


def _unresolved(host: str, exc: OSError) -> str:
    return f"cannot resolve {host}: {exc.strerror or exc}"


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpx's connections, through the guard."""

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
        try:
            address = await checked_address(host, port, self._allowed)
        except OSError as exc:
            raise httpcore.ConnectError(_unresolved(host, exc)) from exc
        return await self._inner.connect_tcp(
            address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused(path, path, "unix sockets are not reachable from pipelines")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedBackend2(httpcore2.AsyncNetworkBackend):
    """httpx2's connections (the MCP SDK's), through the same guard."""

    def __init__(self, allowed: tuple[Network, ...]) -> None:
        self._allowed = allowed
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            address = await checked_address(host, port, self._allowed)
        except OSError as exc:
            raise httpcore2.ConnectError(_unresolved(host, exc)) from exc
        return await self._inner.connect_tcp(
            address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise OutboundRefused(path, path, "unix sockets are not reachable from pipelines")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _TracedTransport(httpx.AsyncHTTPTransport):
    """Sends the current trace context (``traceparent``) with every request, when tracing."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        inject(request.headers)
        return await super().handle_async_request(request)


def guarded_transport(
    allowed: tuple[Network, ...], limits: httpx.Limits
) -> httpx.AsyncBaseTransport:
    """An httpx transport whose connections pass the outbound rule."""
    transport = _TracedTransport(limits=limits, trust_env=False)
    # httpx takes no network backend, so its pool is rebuilt with ours, same settings.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_GuardedBackend(allowed),
    )
    return transport


def guarded_mcp_client(allowed: tuple[Network, ...], timeout: float) -> httpx2.AsyncClient:
    """An httpx2 client for the MCP SDK whose connections pass the outbound rule (the SDK
    follows only same-origin redirects itself; SSE streams may stay open ``timeout`` s)."""
    transport = httpx2.AsyncHTTPTransport(trust_env=False)
    transport._pool = httpcore2.AsyncConnectionPool(
        ssl_context=httpx2.create_ssl_context(trust_env=False),
        network_backend=_GuardedBackend2(allowed),
    )
    return httpx2.AsyncClient(
        transport=transport,
        trust_env=False,
        follow_redirects=False,
        timeout=httpx2.Timeout(30.0, read=max(timeout, 30.0)),
    )


# Errors of the connection, which a later try may not meet; other HTTP errors (a bad URL, a
# protocol this client does not speak) would only repeat.
_NETWORK = (
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
    httpx2.NetworkError,
    httpx2.RemoteProtocolError,
    httpx2.ProxyError,
    OSError,
)
_TIMEOUTS = (httpx.TimeoutException, httpx2.TimeoutException, TimeoutError)


def outbound_failure(exc: BaseException, where: str, *, doing: str = "reach") -> OutboundFailure:
    """How an exception from a call to ``where`` is recorded: refused addresses are final,
    timeouts and network errors (DNS included) may pass; anything else is named by its class
    only (its text may come from the remote side). ``doing``: "could not <doing> <where>"."""
    cause = root_cause(exc)
    if isinstance(cause, OutboundRefused):
        return OutboundFailure(str(cause), retryable=False, refused=True)
    if isinstance(cause, _TIMEOUTS):
        return OutboundFailure(f"{where} did not answer in time ({type(cause).__name__})", True)
    if isinstance(cause, _NETWORK):
        detail = str(cause)[:_MAX_DETAIL] or type(cause).__name__
        return OutboundFailure(f"could not {doing} {where}: {detail}", retryable=True)
    if isinstance(cause, httpx.HTTPError | httpx2.HTTPError):
        detail = str(cause)[:_MAX_DETAIL] or type(cause).__name__
        return OutboundFailure(f"could not {doing} {where}: {detail}", retryable=False)
    return OutboundFailure(f"could not {doing} {where}: {type(cause).__name__}", retryable=True)


def root_cause(exc: BaseException) -> BaseException:
    """The first real error inside the exception groups anyio's task groups wrap errors in."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
