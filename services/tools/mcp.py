"""The ``mcp`` transport: tools on MCP servers over streamable HTTP or stdio, with sessions reused.

A tool's address is ``server.tool``: everything after the first dot is the MCP tool name.

What a call returns: the result's structured content when the server gives one; else, when
the result is a single text block, that text parsed as JSON if it is JSON, or
``{"text": ...}`` if not; several text blocks are joined into one ``{"text": ...}``; any other
content comes back as ``{"content": [...]}`` (the MCP blocks as JSON). A result with
``isError`` fails the call (not retryable) with the tool's own text.

The call's idempotency key travels in the request's ``_meta`` as IDEMPOTENCY_META_KEY, for
servers that deduplicate: a call whose session died is sent once more on a new session.

A stdio server gets the SDK's safe default environment (PATH, HOME ...), not ours, and
writes its log to our stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import mcp.types as mcp_types
import msgspec
from mcp import Client, StdioServerParameters
from mcp.client._transport import TransportStreams
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from domain.events import ToolRegistered
from domain.outbound import DEFAULT_ALLOW, Network, parse_allow_list
from domain.tools import DESCRIPTION_MAX
from services.tools.errors import ToolCallError, excerpt
from services.tools.outbound import guarded_mcp_client, outbound_failure, root_cause

IDEMPOTENCY_META_KEY = "ordinaut/idempotency-key"
CONNECT_TIMEOUT = 30.0
CLOSE_TIMEOUT = 10.0
LIST_PAGES_MAX = 100
CLIENT_INFO = mcp_types.Implementation(name="ordinaut", version="0.1.0")
# An endpoint URL (streamable HTTP) or the argv of a stdio server.
Target = str | tuple[str, ...]


def mcp_tool_name(address: str) -> str:
    """The MCP tool name in an address: everything after the first dot."""
    return address.split(".", 1)[1]


def target_of(tool: ToolRegistered) -> Target:
    """Where an mcp tool's server is: its endpoint, or its command."""
    if tool.endpoint is not None:
        return tool.endpoint
    if tool.command:
        return tool.command
    raise ToolCallError(f"{tool.address} has neither an endpoint nor a command", retryable=False)


def _describe(target: Target) -> str:
    return target if isinstance(target, str) else " ".join(target)


def _client(target: Target, allowed: tuple[Network, ...]) -> Client:
    if isinstance(target, str):  # over HTTP: through the outbound guard, like every request
        return Client(_guarded_http(target, allowed), client_info=CLIENT_INFO)
    server = StdioServerParameters(command=target[0], args=list(target[1:]))
    return Client(server, client_info=CLIENT_INFO)


@contextlib.asynccontextmanager
async def _guarded_http(url: str, allowed: tuple[Network, ...]) -> AsyncIterator[TransportStreams]:
    """The SDK's streamable HTTP transport on a client that only reaches allowed addresses."""
    async with (
        guarded_mcp_client(allowed, CONNECT_TIMEOUT) as http,
        streamable_http_client(url, http_client=http) as streams,
    ):
        yield streams


def _connect_error(target: Target, exc: BaseException, timeout: float) -> ToolCallError:
    """Why a server could not be reached, by the class of failure: the server's own words
    (an HTTP body, say) are not repeated."""
    cause = root_cause(exc)
    where = f"MCP server {_describe(target)}"
    if isinstance(cause, TimeoutError):
        return ToolCallError(
            f"could not connect to {where}: no answer within {timeout:g} s", retryable=True
        )
    if isinstance(target, str):
        failure = outbound_failure(cause, where, doing="connect to")
        return ToolCallError(failure.message, retryable=failure.retryable)
    detail = str(cause) or type(cause).__name__
    # A server that is down may be up again later; one that cannot be started will not be.
    retryable = not isinstance(cause, (FileNotFoundError, PermissionError))
    return ToolCallError(f"could not connect to {where}: {detail}", retryable=retryable)


class _Session:
    """One open MCP client session, owned by a task of its own.

    The SDK's client lives in anyio task groups, which must be entered and left by the same
    task; calls come from many tasks. So one owner task opens the client, waits until the
    session is closed, and closes it; callers only send requests through it, which the SDK
    allows concurrently (each request waits for its own response).
    """

    def __init__(self, target: Target, allowed: tuple[Network, ...]) -> None:
        self.target, self._allowed = target, allowed
        self._opened: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        self._closing = asyncio.Event()
        self._owner = asyncio.create_task(self._own(), name=f"mcp {_describe(target)}")

    async def _own(self) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    client = await stack.enter_async_context(_client(self.target, self._allowed))
                self._opened.set_result(client)
                await self._closing.wait()
        except Exception as exc:  # a failed open is reported to callers; a failed close is moot
            self._fail(_connect_error(self.target, exc, CONNECT_TIMEOUT))
        finally:
            closed = f"the session with MCP server {_describe(self.target)} was closed"
            self._fail(ToolCallError(closed, retryable=True))

    def _fail(self, error: ToolCallError) -> None:
        if not self._opened.done():
            self._opened.set_exception(error)

    @property
    def alive(self) -> bool:
        return not self._owner.done()

    async def client(self) -> Client:
        """The open client, once the session is open (shielded: one caller's timeout must
        not abort an open other callers wait for)."""
        return await asyncio.shield(self._opened)

    async def close(self) -> None:
        """Close the session, waiting (a while) for the server to be told or stopped."""
        self._closing.set()
        if not self._opened.done():  # still connecting: give up on it
            self._owner.cancel()
        await asyncio.wait({self._owner}, timeout=CLOSE_TIMEOUT)
        if not self._owner.done():
            self._owner.cancel()
            await asyncio.wait({self._owner}, timeout=CLOSE_TIMEOUT)
        if self._opened.done() and not self._opened.cancelled():
            self._opened.exception()  # retrieved: no "exception was never retrieved" noise


class McpSessions:
    """MCP sessions, one per server (endpoint or command), opened lazily and shared by calls."""

    def __init__(self, allowed: tuple[Network, ...] | None = None) -> None:
        """``allowed``: networks beyond public addresses that HTTP servers may be on (the
        admin's allow-list; default: loopback only)."""
        self._sessions: dict[Target, _Session] = {}
        self._closed = False
        self._allowed = parse_allow_list(DEFAULT_ALLOW) if allowed is None else allowed

    async def call(
        self, tool: ToolRegistered, arguments: dict[str, Any], *, idempotency_key: str
    ) -> Any:
        """Call ``tool`` with ``arguments``; its output as described in the module docstring.

        A session found dead is reopened, and a call whose session died under it is sent
        once more on a new one.
        """
        target = target_of(tool)
        meta = cast(mcp_types.RequestParamsMeta, {IDEMPOTENCY_META_KEY: idempotency_key})
        for attempt in range(2):
            session = self._session(target)
            client = await self._client(session)
            try:
                result = await client.call_tool(mcp_tool_name(tool.address), arguments, meta=meta)
            except MCPError as exc:
                if exc.code == mcp_types.CONNECTION_CLOSED and attempt == 0:
                    await self._drop(session)
                    continue
                raise _call_error(tool, exc) from exc
            except (ValueError, RuntimeError) as exc:  # a result that breaks the protocol
                # (pydantic) or the tool's own output schema (the SDK checks it)
                raise ToolCallError(
                    f"{tool.address}: bad MCP result: {excerpt(str(exc))}", retryable=False
                ) from exc
            except Exception as exc:  # the transport broke: this session may be unusable
                await self._drop(session)
                cause = root_cause(exc)
                detail = excerpt(str(cause) or type(cause).__name__)
                raise ToolCallError(f"{tool.address}: {detail}", retryable=True) from exc
            return output_of(tool.address, result)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _session(self, target: Target) -> _Session:
        if self._closed:  # shutting down: a call still in flight must not reopen anything
            raise ToolCallError("the MCP sessions are closed (shutting down)", retryable=True)
        session = self._sessions.get(target)
        if session is None or not session.alive:
            session = self._sessions[target] = _Session(target, self._allowed)
        return session

    async def _client(self, session: _Session) -> Client:
        try:
            return await session.client()
        except ToolCallError:
            await self._drop(session)  # the next call tries to connect afresh
            raise

    async def _drop(self, session: _Session) -> None:
        if self._sessions.get(session.target) is session:
            del self._sessions[session.target]
        await session.close()

    async def aclose(self) -> None:
        """Close every session (stdio servers are stopped); later calls are refused."""
        self._closed = True
        sessions, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(session.close() for session in sessions))


def _call_error(tool: ToolRegistered, exc: MCPError) -> ToolCallError:
    retryable = exc.code in (mcp_types.CONNECTION_CLOSED, mcp_types.REQUEST_TIMEOUT)
    return ToolCallError(
        f"{tool.address}: MCP error {exc.code}: {excerpt(exc.message, 500)}", retryable=retryable
    )


def output_of(address: str, result: mcp_types.CallToolResult) -> Any:
    """A tool result as the step's output (see the module docstring); isError raises."""
    texts = [block.text for block in result.content if isinstance(block, mcp_types.TextContent)]
    if result.is_error:
        message = excerpt("\n".join(texts), 500) or "the tool reported an error"
        raise ToolCallError(f"{address} failed: {message}", retryable=False)
    if result.structured_content is not None:
        return result.structured_content
    if len(texts) != len(result.content):
        return {
            "content": [
                block.model_dump(mode="json", by_alias=True, exclude_none=True)
                for block in result.content
            ]
        }
    if len(texts) == 1:
        try:
            return msgspec.json.decode(texts[0])
        except msgspec.DecodeError:
            pass
    return {"text": "\n".join(texts)}


async def list_server_tools(
    server_name: str,
    *,
    endpoint: str | None = None,
    command: Sequence[str] | None = None,
    timeout_seconds: float = CONNECT_TIMEOUT,
    allowed: tuple[Network, ...] | None = None,
) -> list[ToolRegistered]:
    """Every tool an MCP server lists, as registrations at ``<server_name>.<tool name>``.

    Not validated here (a tool name may not fit an address): see domain.tools. Raises
    ToolCallError if the server cannot be reached or answers with an error; its message names
    the class of failure, never what the server said (it goes back to the API's caller).
    ``allowed`` as for McpSessions.
    """
    if (endpoint is None) == (not command):
        raise ValueError("give exactly one of an MCP server's endpoint and its command")
    target: Target = endpoint if endpoint is not None else tuple(command or ())
    allowed = parse_allow_list(DEFAULT_ALLOW) if allowed is None else allowed
    try:
        async with asyncio.timeout(timeout_seconds), _client(target, allowed) as client:
            listed = await _list_all(client)
    except Exception as exc:
        cause = root_cause(exc)  # the SDK's task groups may wrap it
        if isinstance(cause, MCPError) and cause.code != mcp_types.CONNECTION_CLOSED:
            code = cause.code
            message = f"MCP server {_describe(target)} refused to list its tools (MCP error {code})"
            raise ToolCallError(message, retryable=False) from None
        raise _connect_error(target, exc, timeout_seconds) from None
    return [
        ToolRegistered(
            address=f"{server_name}.{tool.name}",
            transport="mcp",
            description=None if tool.description is None else tool.description[:DESCRIPTION_MAX],
            endpoint=endpoint,
            command=None if command is None else tuple(command),
            input_schema=dict(tool.input_schema),
            output_schema=dict(tool.output_schema or {}),
        )
        for tool in listed
    ]


async def _list_all(client: Client) -> list[mcp_types.Tool]:
    tools: list[mcp_types.Tool] = []
    cursor: str | None = None
    for _ in range(LIST_PAGES_MAX):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools
