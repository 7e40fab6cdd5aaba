"""An MCP server for the transport tests: stdio when run as a script, or an app for uvicorn.

Every log line goes to stderr: on stdio, stdout is the protocol channel.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter
from typing import Any

import anyio
from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

HANDSHAKES = ("initialize", "server/discover")


class MethodCounter:
    """Counts the requests this server answers, by method: handshakes mean new sessions."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        self.seen[ctx.method] += 1
        return await call_next(ctx)

    @property
    def handshakes(self) -> int:
        return sum(self.seen[method] for method in HANDSHAKES)


def build_server(name: str = "echo") -> tuple[MCPServer, MethodCounter]:
    """The server and the counter of the requests it answers."""
    counter = MethodCounter()
    server: MCPServer = MCPServer(name, log_level="WARNING", middleware=[counter])

    @server.tool(structured_output=False)
    def echo(text: str) -> dict[str, Any]:
        """Returns the text and the server's process id (no output schema: JSON text)."""
        return {"text": text, "pid": os.getpid()}

    @server.tool()
    def add(a: int, b: int) -> int:
        """Adds two integers (structured output: {"result": a + b})."""
        return a + b

    @server.tool(structured_output=False)
    def greet(name: str) -> str:
        """Plain text that is not JSON."""
        return f"Hello, {name}"

    @server.tool()
    def fail(reason: str) -> str:
        """Always fails, as a tool error (isError) with the reason."""
        raise ToolError(reason)

    @server.tool()
    async def slow(seconds: float) -> str:
        """Answers after ``seconds``."""
        await anyio.sleep(seconds)
        return "done"

    @server.tool()
    def handshakes() -> dict[str, int]:
        """How many sessions this server process has opened, and its process id."""
        return {"handshakes": counter.handshakes, "pid": os.getpid()}

    @server.tool()
    def idempotency_key(ctx: Context) -> dict[str, Any]:
        """The idempotency key the client sent in _meta."""
        meta = ctx.request_context.meta or {}
        return {"key": meta.get("ordinaut/idempotency-key")}

    @server.tool()
    def die() -> str:
        """Answers, then ends this process (the client must notice and reconnect)."""
        threading.Timer(0.2, os._exit, args=(3,)).start()
        return "bye"

    server.add_tool(
        lambda query: {"hits": [query]},
        name="search/web",
        description="A name that cannot be part of an address",
    )
    return server, counter


if __name__ == "__main__":
    print("mcp echo server on stdio", file=sys.stderr)
    build_server()[0].run("stdio")
