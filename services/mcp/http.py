"""MCP over streamable HTTP, mounted on the API at /mcp with the API's bearer tokens."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import structlog
from litestar import Litestar, asgi
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Receive, Scope, Send

from services.application.context import Backend
from services.application.principal import Principal

log = structlog.get_logger("ordinaut.mcp")
_UNAVAILABLE = (
    b'{"title":"Service Unavailable","status":503,'
    b'"detail":"the MCP endpoint could not start; see the API log"}'
)

MCP_PATH = "/mcp"
# Host headers the transport accepts (DNS-rebinding protection); the API adds its own host.
LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]")


# Admits a request to /mcp and leaves its principal, correlation id and backend in the
# request's scope state (the API's, passed in by the composition root: services/cli/up.py).
Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


async def _session(ctx: Any) -> tuple[Principal, str, Backend]:
    """The caller the guard admitted, from the HTTP request the message came in."""
    state = ctx.request.scope["state"]
    return state["principal"], state["correlation_id"], state["backend"]


class McpMount:
    """The /mcp route and the lifespan that runs its session manager (a mount's own never runs).

    The MCP SDK takes over a second of CPU to import, so the API starts serving without it:
    the lifespan imports it in a thread and then runs the session manager; a request to /mcp
    that arrives first waits for it (503 if it could not load).
    """

    def __init__(self, guard: Guard, allowed_hosts: Sequence[str] = ()) -> None:
        self._hosts = [*LOOPBACK_HOSTS, *allowed_hosts]
        self._app: Any = None
        self._settled = asyncio.Event()

        @asgi(
            MCP_PATH,
            is_mount=True,
            copy_scope=True,
            guards=[guard],
            include_in_schema=False,
        )
        async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
            await self._settled.wait()
            if self._app is None:
                headers = [(b"content-type", b"application/problem+json")]
                start: Any = {"type": "http.response.start", "status": 503, "headers": headers}
                await send(start)
                await send({"type": "http.response.body", "body": _UNAVAILABLE, "more_body": False})
                return
            await self._app(scope, receive, send)

        self.route = mcp_endpoint

    def _build(self) -> Any:
        from mcp.server.transport_security import TransportSecuritySettings

        from services.mcp.server import build_server

        server = build_server(_session)
        self._app = server.streamable_http_app(
            streamable_http_path="/",
            stateless_http=True,  # any API process can answer any request
            json_response=True,
            transport_security=TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=self._hosts,
                allowed_origins=[f"http://{host}" for host in self._hosts],
            ),
        )
        return server

    async def _serve(self, stop: asyncio.Event) -> None:
        try:
            await asyncio.to_thread(importlib.import_module, "services.mcp.server")
            server = self._build()
        except Exception:
            log.exception("mcp.unavailable")
            self._settled.set()
            return
        async with server.session_manager.run():
            self._settled.set()
            await stop.wait()

    @contextlib.asynccontextmanager
    async def lifespan(self, _: Litestar) -> AsyncIterator[None]:
        """Load MCP in the background and run its session manager for as long as the app runs."""
        stop = asyncio.Event()
        serving = asyncio.create_task(self._serve(stop), name="mcp")
        try:
            yield
        finally:
            stop.set()
            await serving
