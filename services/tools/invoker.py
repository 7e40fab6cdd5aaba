"""Calling one tool: check its input, send it by its transport, bound the time, check its output."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from domain.events import ToolRegistered
from domain.outbound import Network
from domain.tool_schemas import SchemaViolation, check_input, check_output
from services.runtime.tracing import Attributes, span
from services.tools.errors import ToolCallError
from services.tools.http import HttpTools
from services.tools.python import PythonTools
from services.tools.shell import ShellTool

if TYPE_CHECKING:
    # The MCP SDK takes seconds to import; processes that never call an MCP tool skip it.
    from services.tools.mcp import McpSessions

# httpx's own timeout is only a backstop: asyncio.timeout bounds the whole call (connecting,
# sending, reading, redirects), so httpx gets a little longer and the message is always ours.
_HTTPX_GRACE = 1.0


def cancellable(tool: ToolRegistered) -> bool:
    """Whether abandoning a call of ``tool`` really stops it on the other side.

    MCP has cancellation in the protocol (the SDK sends `notifications/cancelled`, or aborts
    the request's POST on streamable HTTP). A `shell.exec` program is killed with its process
    group. An HTTP tool's POST cannot be taken back: cutting the connection would only hide
    whether its side effect happened, so it runs to its end.
    """
    return tool.transport == "mcp" or tool.address == "shell.exec"


class ToolInvoker:
    """Calls tools over http, mcp and python, and the builtins ``debug.echo``, ``http.request``
    and ``shell.exec``.

    The other builtins (``orchestrator.*``, ``pipeline.foreach``) act on Ordinaut itself and
    are run by the pipeline runner; asking the invoker for one is refused.
    """

    def __init__(
        self,
        *,
        http: HttpTools | None = None,
        mcp: McpSessions | None = None,
        python: PythonTools | None = None,
        shell: ShellTool | None = None,
        outbound_allow: tuple[Network, ...] | None = None,
    ) -> None:
        """``outbound_allow`` is the admin's allow-list for MCP servers over HTTP (the http
        tools' own is given to ``http``); None: loopback only."""
        self._http = http if http is not None else HttpTools()
        self._mcp = mcp
        self._outbound_allow = outbound_allow
        self._python = python if python is not None else PythonTools()
        self._shell = shell if shell is not None else ShellTool()

    async def call(
        self,
        tool: ToolRegistered,
        arguments: dict[str, Any],
        *,
        idempotency_key: str,
        timeout: float,  # noqa: ASYNC109 - each step has its own; enforced with asyncio.timeout
    ) -> Any:
        """The tool's output for ``arguments``; ToolCallError if the call fails.

        Input and output are checked against the tool's schemas (a violation is not
        retryable); going over ``timeout`` seconds is (a retryable "timed out").
        """
        check_arguments(tool, arguments)
        try:
            async with asyncio.timeout(timeout):
                with span("ordinaut.tool", _attributes(tool), kind="client"):
                    output = await self._dispatch(tool, arguments, idempotency_key, timeout)
        except TimeoutError:
            raise ToolCallError(
                f"{tool.address} timed out after {timeout:g} s", retryable=True
            ) from None
        _checked(check_output, tool, output)
        return output

    async def _dispatch(
        self, tool: ToolRegistered, arguments: dict[str, Any], key: str, seconds: float
    ) -> Any:
        backstop = seconds + _HTTPX_GRACE
        if tool.transport == "http":
            if tool.endpoint is None:
                raise ToolCallError(f"{tool.address} has no endpoint", retryable=False)
            return await self._http.post(
                tool.endpoint, arguments, idempotency_key=key, timeout_seconds=backstop
            )
        if tool.transport == "mcp":
            return await self._mcp_sessions().call(tool, arguments, idempotency_key=key)
        if tool.transport == "python":
            return await self._python.call(tool, arguments)
        if tool.address == "shell.exec":
            return await self._shell.run(arguments)
        if tool.address == "debug.echo":
            return arguments
        if tool.address == "http.request":
            return await self._http.request(arguments, timeout_seconds=backstop)
        raise ToolCallError(
            f"{tool.address} is run by the pipeline runner, not by the tool invoker",
            retryable=False,
        )

    def _mcp_sessions(self) -> McpSessions:
        if self._mcp is None:
            from services.tools.mcp import McpSessions

            self._mcp = McpSessions(self._outbound_allow)
        return self._mcp

    async def aclose(self) -> None:
        """Close the shared HTTP client, every MCP session and the python tools' threads."""
        self._python.close()
        await self._http.aclose()
        if self._mcp is not None:
            await self._mcp.aclose()


def _attributes(tool: ToolRegistered) -> Attributes:
    """What a tool call's span says: which tool, over what (never its input or endpoint)."""
    return {"ordinaut.tool.address": tool.address, "ordinaut.tool.transport": tool.transport}


def check_arguments(tool: ToolRegistered, arguments: object) -> None:
    """ToolCallError (not retryable) if ``arguments`` break the tool's input schema."""
    _checked(check_input, tool, arguments)


def _checked(
    check: Callable[[ToolRegistered, object], None], tool: ToolRegistered, value: object
) -> None:
    try:
        check(tool, value)
    except SchemaViolation as exc:
        raise ToolCallError(f"{tool.address}: {exc.field}: {exc.reason}", retryable=False) from exc
