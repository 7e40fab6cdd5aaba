"""MCP over streamable HTTP, mounted on the API at /mcp with the API's bearer tokens."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from litestar import Litestar, asgi
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Receive, Scope, Send
from mcp.server.transport_security import TransportSecuritySettings

from services.api.auth import Principal, authenticate
from services.api.calls import backend_of
from services.api.operations.context import Backend
from services.api.rate_limit import enforce as enforce_rate_limit
from services.mcp.server import build_server

MCP_PATH = "/mcp"
# Host headers the transport accepts (DNS-rebinding protection); the API adds its own host.
LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]")


async def authenticated(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Any valid token may connect (401 otherwise); each tool then checks its own scope.

    It has no ``scope`` attribute on purpose: the route matrix test checks scoped routes.
    """
    principal = await authenticate(connection)
    await enforce_rate_limit(connection, principal.actor, principal.rate_limits)
    state = connection.scope["state"]
    state["principal"], state["backend"] = principal, backend_of(connection.app.state)


async def _session(ctx: Any) -> tuple[Principal, str, Backend]:
    """The caller the guard admitted, from the HTTP request the message came in."""
    state = ctx.request.scope["state"]
    return state["principal"], state["correlation_id"], state["backend"]


class McpMount:
    """The /mcp route and the lifespan that runs its session manager (a mount's own never runs)."""

    def __init__(self, allowed_hosts: Sequence[str] = ()) -> None:
        self.server = build_server(_session)
        hosts = [*LOOPBACK_HOSTS, *allowed_hosts]
        self.app = self.server.streamable_http_app(
            streamable_http_path="/",
            stateless_http=True,  # any API process can answer any request
            json_response=True,
            transport_security=TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=hosts,
                allowed_origins=[f"http://{host}" for host in hosts],
            ),
        )
        inner = self.app

        @asgi(
            MCP_PATH,
            is_mount=True,
            copy_scope=True,
            guards=[authenticated],
            include_in_schema=False,
        )
        async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
            await inner(scope, receive, send)  # type: ignore[arg-type]

        self.route = mcp_endpoint

    @contextlib.asynccontextmanager
    async def lifespan(self, _: Litestar) -> AsyncIterator[None]:
        """Run the MCP session manager for as long as the app runs."""
        async with self.server.session_manager.run():
            yield
