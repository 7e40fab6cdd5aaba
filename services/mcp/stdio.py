"""MCP over stdio (`ordinaut mcp`): stdout carries the protocol, so logs go to stderr only."""

from __future__ import annotations

import uuid
from typing import Any

import redis.asyncio as redis
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from projections.registry import inline_projections
from services.application.context import Backend
from services.application.principal import Principal, principal_for
from services.channels.work import Announcer
from services.mcp.errors import non_finite
from services.mcp.server import build_server, tool_error
from services.store.pool import open_pool


class TokenRefused(Exception):
    """ORDINAUT_TOKEN is neither the admin token nor a live agent token."""


async def _serve(server: Server[Any]) -> None:
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
            await _serve(build_server(session))
        finally:
            if client is not None:
                await client.aclose()


async def serve_proxy(url: str, token: str) -> None:
    """Serve over stdio what the API at ``url`` serves at /mcp (each call goes there)."""
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    endpoint = f"{url.rstrip('/')}/mcp"
    async with http, Client(streamable_http_client(endpoint, http_client=http)) as remote:

        async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
            return await remote.list_tools()

        async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
            arguments = params.arguments or {}
            # Refused here as the API would: relayed, such a number would reach it as null.
            if (refused := non_finite(arguments)) is not None:
                return tool_error(refused)
            return await remote.call_tool(params.name, arguments)

        async def list_templates(ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
            return await remote.list_resource_templates()

        async def list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
            return await remote.list_resources()

        async def read_resource(
            ctx: Any, params: types.ReadResourceRequestParams
        ) -> types.ReadResourceResult:
            return await remote.read_resource(params.uri)

        await _serve(
            Server(
                "ordinaut",
                on_list_tools=list_tools,
                on_call_tool=call_tool,
                on_list_resource_templates=list_templates,
                on_list_resources=list_resources,
                on_read_resource=read_resource,
            )
        )
