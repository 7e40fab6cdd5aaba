"""With tracing on, an MCP tool call carries the trace context of its `ordinaut.tool` span."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mcp.server import MCPServer
from mcp.server.mcpserver import Context

from domain.events import ToolRegistered
from services.runtime import tracing
from services.tools.invoker import ToolInvoker
from tests.tools_servers.http_tool_server import serve


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Tracing on, into memory, through a provider of its own (the global one is untouched)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    return exporter


@pytest.fixture
def mcp_url() -> Iterator[str]:
    server: MCPServer = MCPServer("trace", log_level="WARNING")

    @server.tool()
    def trace_context(ctx: Context) -> dict[str, Any]:
        """The W3C trace context the client sent in _meta (MCP SEP-414)."""
        meta = ctx.request_context.meta or {}
        return {"traceparent": meta.get("traceparent")}

    with serve(server.streamable_http_app()) as base_url:
        yield f"{base_url}/mcp"


async def test_an_mcp_call_sends_the_trace_context_of_its_span(exported: Any, mcp_url: str) -> None:
    tool = ToolRegistered(address="echo.trace_context", transport="mcp", endpoint=mcp_url)
    invoker = ToolInvoker()
    try:
        with tracing.span("ordinaut.step"):
            answer = await invoker.call(tool, {}, idempotency_key="k", timeout=20)
    finally:
        await invoker.aclose()
    call = next(s for s in exported.get_finished_spans() if s.name == "ordinaut.tool")
    assert dict(call.attributes) == {
        "ordinaut.tool.address": "echo.trace_context",
        "ordinaut.tool.transport": "mcp",
    }
    trace_id = f"{call.context.trace_id:032x}"
    # the MCP SDK's own span is a child of ours (or, with no global provider, ours itself)
    assert answer["traceparent"].startswith(f"00-{trace_id}-")
