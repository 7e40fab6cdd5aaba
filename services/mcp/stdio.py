"""MCP over stdio (`ordinaut mcp`): stdout carries the protocol, so logs go to stderr only."""

from __future__ import annotations

import uuid
from typing import Any

import redis.asyncio as redis
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

from projections.registry import inline_projections
from services.application.context import Backend
from services.application.principal import Principal, principal_for
from services.channels.work import Announcer
from services.mcp.server import build_server
from services.store.pool import open_pool


class NotServed(Exception):
    """`ordinaut mcp` cannot start serving; the message says why in one line."""


class TokenRefused(NotServed):
    """ORDINAUT_TOKEN is neither the admin token nor a live agent token."""


async def serve_stdio(server: Server[Any]) -> None:
    """Serve ``server`` on stdin/stdout until stdin ends."""
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


async def serve_direct(
    database_url: str,
    redis_url: str | None,
    token: str,
    admin_hash: bytes,
    shell_allow: tuple[str, ...] = (),
) -> None:
    """Serve the tools over stdio against the store itself, as the token's principal.

    The token is looked up again on every call, as the API does on every request, so a
    revocation or a scope change holds from the next call on.
    """
    async with open_pool(database_url, size=4) as pool:
        if await principal_for(token, admin_hash, pool) is None:
            raise TokenRefused("ORDINAUT_TOKEN is not a valid token")
        client = redis.Redis.from_url(redis_url, socket_timeout=2.0) if redis_url else None
        announcer = Announcer(client) if client else None
        backend = Backend(pool, inline_projections(), announcer, shell_allow)

        async def session(_: Any) -> tuple[Principal, str, Backend]:
            principal = await principal_for(token, admin_hash, pool)
            if principal is None:
                raise MCPError(code=types.INVALID_REQUEST, message="the token is not valid")
            return principal, str(uuid.uuid4()), backend

        try:
            await serve_stdio(build_server(session))
        finally:
            if client is not None:
                await client.aclose()
