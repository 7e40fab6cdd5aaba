"""The ``http`` transport (POST the input as JSON) and the builtin ``http.request`` tool.

Redirects: the ``http`` transport never follows one (a 3xx fails the call naming the new
location: a registered endpoint that moved should be re-registered, not chased).
``http.request`` follows up to MAX_REDIRECTS redirects on the same origin (scheme, host and
port) and returns any other one as its response, ``location`` header included, so a pipeline
never talks to another host without saying so.
"""

from __future__ import annotations

from collections.abc import Mapping
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
import msgspec

from domain.outbound import DEFAULT_ALLOW, Network, parse_allow_list
from services.tools.errors import ToolCallError, excerpt
from services.tools.outbound import guarded_transport, outbound_failure

MAX_BODY_BYTES = 1024 * 1024  # as large as a request the API accepts
MAX_REDIRECTS = 5
USER_AGENT = "ordinaut/0.1"


def create_client(allowed: tuple[Network, ...] | None = None) -> httpx.AsyncClient:
    """The client that every http tool call shares: pooled connections, no cookies kept.

    Every tool shares it, so a cookie one response sets must never ride along on another
    tool's request: the jar's policy accepts none. Its connections only reach addresses the
    outbound rule allows (``allowed``: the admin's allow-list; default: loopback only).
    """
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30)
    if allowed is None:
        allowed = parse_allow_list(DEFAULT_ALLOW)
    return httpx.AsyncClient(
        transport=guarded_transport(allowed, limits),
        follow_redirects=False,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        headers={"User-Agent": USER_AGENT},
    )


def retryable_status(status: int) -> bool:
    """Statuses worth another try: timeouts, rate limits and server errors."""
    return status in (408, 429) or status >= 500


class HttpTools:
    """The ``http`` transport and the ``http.request`` builtin, on one shared client."""

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        allowed: tuple[Network, ...] | None = None,
    ) -> None:
        self._client = client if client is not None else create_client(allowed)
        self._owned = client is None
        self._max_body = max_body_bytes

    async def aclose(self) -> None:
        """Close the client (only one this object created)."""
        if self._owned:
            await self._client.aclose()

    async def post(
        self, endpoint: str, payload: Any, *, idempotency_key: str, timeout_seconds: float
    ) -> Any:
        """POST ``payload`` as JSON to ``endpoint``; the decoded JSON answer (None if empty).

        A non-2xx status or a body that is not JSON raises ToolCallError naming the status
        and the start of the body; 408, 429 and 5xx are retryable.
        """
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Idempotency-Key": idempotency_key,
        }
        request = self._client.build_request(
            "POST",
            endpoint,
            content=msgspec.json.encode(payload),
            headers=headers,
            timeout=timeout_seconds,
        )
        response, body = await self._send(request)
        status = response.status_code
        if not 200 <= status < 300:
            raise _status_error(response, body, endpoint)
        if not body.strip():  # 204 and friends: the tool has nothing to say
            return None
        try:
            return msgspec.json.decode(body)
        except msgspec.DecodeError:
            text = excerpt(body.decode("utf-8", "replace"))
            raise ToolCallError(
                f"HTTP {status} from {endpoint}: the body is not JSON: {text!r}", retryable=False
            ) from None

    async def request(
        self, arguments: Mapping[str, Any], *, timeout_seconds: float
    ) -> dict[str, Any]:
        """The builtin ``http.request``: any status is an answer; only transport errors fail.

        Its own ``timeout_seconds`` may shorten the call's, never lengthen it.
        """
        if "json" in arguments and "body" in arguments:
            raise ToolCallError("http.request takes json or body, not both", retryable=False)
        headers = dict(arguments.get("headers", {}))
        content: bytes | None = None
        if "json" in arguments:
            content = msgspec.json.encode(arguments["json"])
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = "application/json"
        elif "body" in arguments:
            content = str(arguments["body"]).encode()
        limit = min(timeout_seconds, float(arguments.get("timeout_seconds", timeout_seconds)))
        method = str(arguments.get("method", "GET"))
        try:
            request = self._client.build_request(
                method,
                arguments["url"],
                params=arguments.get("query"),
                headers=headers,
                content=content,
                timeout=limit,
            )
        except (httpx.InvalidURL, ValueError) as exc:
            raise ToolCallError(f"http.request cannot send this: {exc}", retryable=False) from None
        response, body = await self._send_following(request)
        return {
            "status": response.status_code,
            "headers": _headers(response.headers),
            **_decoded(response, body),
        }

    async def _send_following(self, request: httpx.Request) -> tuple[httpx.Response, bytes]:
        """Send, following redirects that stay on the request's origin."""
        for _ in range(MAX_REDIRECTS):
            response, body = await self._send(request)
            following = response.next_request
            if following is None or not _same_origin(request.url, following.url):
                return response, body
            request = following
        return await self._send(request)

    async def _send(self, request: httpx.Request) -> tuple[httpx.Response, bytes]:
        """The response and its whole body (at most max_body_bytes); errors as ToolCallError."""
        try:
            response = await self._client.send(request, stream=True)
            try:
                return response, await self._read(response, request.url)
            finally:
                await response.aclose()
        except ToolCallError:
            raise
        except Exception as exc:  # DNS, the outbound rule, the network: the call's failure
            failure = outbound_failure(exc, _origin(request.url))
            raise ToolCallError(failure.message, retryable=failure.retryable) from exc

    async def _read(self, response: httpx.Response, url: httpx.URL) -> bytes:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > self._max_body:
                raise ToolCallError(
                    f"the response from {_origin(url)} is larger than {self._max_body} bytes",
                    retryable=False,
                )
        return bytes(body)


def _status_error(response: httpx.Response, body: bytes, endpoint: str) -> ToolCallError:
    status = response.status_code
    message = f"HTTP {status} from {endpoint}"
    if response.has_redirect_location:
        message += " (redirects are not followed; re-register the tool at its new address: "
        message += f"{response.headers['location']})"
    text = excerpt(body.decode("utf-8", "replace"))
    if text:
        message += f": {text}"
    return ToolCallError(
        message, retryable=retryable_status(status), retry_after=_retry_after(response)
    )


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (the HTTP-date form is rare for APIs and is ignored)."""
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _headers(headers: httpx.Headers) -> dict[str, str]:
    """Lower-case names; a header sent more than once has its values joined by commas."""
    return {name: ", ".join(headers.get_list(name)) for name in headers}


def _decoded(response: httpx.Response, body: bytes) -> dict[str, Any]:
    """``{"json": ...}`` for a JSON body that parses, else ``{"text": ...}``."""
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and (media_type == "application/json" or media_type.endswith("+json")):
        try:
            return {"json": msgspec.json.decode(body)}
        except msgspec.DecodeError:
            pass  # a server that mislabels its body: hand over the text instead
    return {"text": body.decode(response.encoding or "utf-8", "replace")}


def _same_origin(first: httpx.URL, second: httpx.URL) -> bool:
    return (first.scheme, first.host, first.port) == (second.scheme, second.host, second.port)


def _origin(url: httpx.URL) -> str:
    """Where a request went, without its path or query (which may carry secrets)."""
    return f"{url.scheme}://{url.netloc.decode()}"
