"""Helpers for MCP tests: the SDK's own client over streamable HTTP, and reading its results."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


@contextlib.asynccontextmanager
async def mcp_http(base_url: str, token: str) -> AsyncIterator[Client]:
    """An MCP client of ``base_url``/mcp, sending ``token`` as its bearer token."""
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http, Client(streamable_http_client(f"{base_url}/mcp", http_client=http)) as client:
        yield client


async def ok(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """The structured result of a tool call that must succeed."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, (tool, result.content)
    assert result.structured_content is not None
    return result.structured_content


async def refused(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """The problem document of a tool call that must fail."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, (tool, result.structured_content)
    assert result.structured_content is not None
    return result.structured_content
