"""`ordinaut mcp --url`: the tools an API serves at /mcp, relayed over stdio through its outages."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

import httpx2
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.server.lowlevel import Server
from mcp.shared._httpx_utils import MCP_DEFAULT_SSE_READ_TIMEOUT, MCP_DEFAULT_TIMEOUT
from mcp.shared.exceptions import MCPError

from services.application.errors import UpstreamFailed
from services.mcp.errors import non_finite, problem_of
from services.mcp.server import tool_error
from services.mcp.stdio import NotServed, TokenRefused, serve_stdio

_JSON = "application/json"


def _cause(exc: BaseException) -> str:
    """Why a request got no answer: the operating system's words (Connection refused) if any."""
    link: BaseException | None = exc
    while link is not None:
        if isinstance(link, OSError) and link.errno is not None and link.errno > 0:
            return os.strerror(link.errno)
        link = link.__cause__ or link.__context__
    return str(exc) or type(exc).__name__


def _detail(body: bytes, response: httpx2.Response) -> str:
    """What a refusal says: the problem document's ``detail``, else the status's reason."""
    try:
        return str(json.loads(body)["detail"])
    except (ValueError, KeyError, TypeError):
        return response.reason_phrase


def _rpc_error(status: int, message: str, data: dict[str, Any]) -> httpx2.Response:
    """A JSON-RPC error in an HTTP error, which the SDK's client hands to the call it answers."""
    error = {"code": types.INTERNAL_ERROR, "message": message, "data": data}
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()
    return httpx2.Response(status, headers={"content-type": _JSON}, content=body)


class ApiAnswers(httpx2.AsyncBaseTransport):
    """Every request to the API answered in a way the SDK's client passes on to the caller.

    Its streamable HTTP client lets an error raised by a request end the whole session (the
    call itself is never answered), and reports an HTTP refusal without a JSON-RPC body only
    as "Server returned an error response". So a request the API did not answer comes back as
    a JSON-RPC error saying that it is unreachable and why (data ``unreachable``), and a
    refusal (401, 421, 429 …) as one with its status and detail (data ``status``): the caller
    hears why, and the next request tries the API again.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._http = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            response = await self._http.handle_async_request(request)
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                return response  # a stream is read as it comes (the API answers JSON)
            # Read here, so a connection lost mid-answer is one more request not answered.
            body = b"".join([part async for part in response.aiter_raw()])
        except httpx2.TransportError as exc:
            return self._unreachable(exc)
        status, kind = response.status_code, response.headers.get("content-type", "")
        if status >= 400 and not kind.startswith(_JSON):  # a JSON-RPC error is passed on as it is
            detail = _detail(body, response)
            message = f"the Ordinaut API at {self._url} answered {status}: {detail}"
            return _rpc_error(status, message, {"status": status})
        return httpx2.Response(status, headers=response.headers, content=body)

    def _unreachable(self, exc: httpx2.TransportError) -> httpx2.Response:
        message = f"the Ordinaut API at {self._url} is unreachable: {_cause(exc)}"
        # Lost after the request was sent (not while connecting): it may have been carried out.
        sent = not isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout)
        return _rpc_error(502, message, {"unreachable": True, "sent": sent})

    async def aclose(self) -> None:
        await self._http.aclose()


def _leaves(exc: BaseException) -> list[BaseException]:
    """The errors inside the exception groups anyio's task groups wrap them in."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def not_served(exc: BaseException, url: str) -> NotServed:
    """Why the session with the API at ``url`` could not start, as one line."""
    leaves = _leaves(exc)
    refusal = next((leaf for leaf in leaves if isinstance(leaf, MCPError)), None)
    if refusal is None:
        return NotServed(f"the Ordinaut API at {url} could not be reached: {_cause(leaves[0])}")
    data = refusal.data if isinstance(refusal.data, dict) else {}
    if data.get("status") == 401:
        return TokenRefused(f"ORDINAUT_TOKEN is not a valid token (the API at {url} refused it)")
    if data:  # our own words (ApiAnswers): they name the API and the cause
        return NotServed(refusal.message)
    return NotServed(f"the Ordinaut API at {url} did not start an MCP session: {refusal.message}")


def relay_server(remote: Client) -> Server[Any]:
    """A server answering each request with what ``remote`` answers."""

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return await remote.list_tools()

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        arguments = params.arguments or {}
        # Refused here as the API would: relayed, such a number would reach it as null.
        if (refused := non_finite(arguments)) is not None:
            return tool_error(refused)
        try:
            return await remote.call_tool(params.name, arguments)
        except MCPError as exc:
            data = exc.data if isinstance(exc.data, dict) else {}
            if not data.get("unreachable"):
                raise
            sent = "; the call was sent, so it may have taken effect" if data.get("sent") else ""
            # A tool error, which a model reads, as any refusal of the call; the session goes on.
            return tool_error(problem_of(UpstreamFailed(exc.message + sent), params.name, ""))

    async def list_templates(ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
        return await remote.list_resource_templates()

    async def list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        return await remote.list_resources()

    async def read_resource(
        ctx: Any, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        return await remote.read_resource(params.uri)

    return Server(
        "ordinaut",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resource_templates=list_templates,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
    )


async def serve_proxy(url: str, token: str) -> None:
    """Serve over stdio what the API at ``url`` serves at /mcp (each call goes there).

    Raises NotServed (TokenRefused for a token the API refuses) when the first session with
    the API cannot start; once serving, an API that stops answers each call with a tool error
    until it is back.
    """
    base = url.rstrip("/")
    try:
        parsed = httpx2.URL(base)
    except httpx2.InvalidURL:
        parsed = httpx2.URL()
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise NotServed(f"--url {url!r} is not an http:// or https:// URL")
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx2.Timeout(MCP_DEFAULT_TIMEOUT, read=MCP_DEFAULT_SSE_READ_TIMEOUT),
        transport=ApiAnswers(base),
    )
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(http)
        try:
            remote = await stack.enter_async_context(
                Client(streamable_http_client(f"{base}/mcp", http_client=http))
            )
        except Exception as exc:  # the SDK's task groups wrap it: named in one line instead
            raise not_served(exc, base) from None
        await serve_stdio(relay_server(remote))
