"""/mcp when the MCP SDK cannot load: requests get a 503 problem instead of waiting forever."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from services.mcp.http import McpMount


async def _admit_nobody(*_: Any) -> None:
    raise AssertionError("the mount never got as far as a request")


class BrokenMount(McpMount):
    def _build(self) -> Any:
        raise ImportError("no mcp here")


async def test_a_request_after_a_failed_load_is_a_503_problem() -> None:
    mount = BrokenMount(_admit_nobody)
    await asyncio.wait_for(mount._serve(asyncio.Event()), timeout=30)
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    await mount.route.fn({"type": "http", "path": "/mcp"}, receive, send)
    assert sent[0]["status"] == 503
    assert json.loads(sent[1]["body"])["status"] == 503
