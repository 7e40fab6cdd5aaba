"""A minimal HTTP/1.1 keep-alive client for the API benchmark, on asyncio Protocols.

Why not httpx: the benchmark's load generator runs on the same machine as the API it
measures, which has two cores. At 400 requests/s httpx spent about half a core or more of
its own, CPU the server then lacked, and requests went out late (send lag), so the measured
latencies described the load generator as much as the API. This client does only what the
benchmark needs, with as little work per request as possible:

- a fixed number of persistent connections per pool; a request waits for a free one (in
  arrival order), and that wait is part of its latency;
- requests are bytes encoded up front (:class:`RequestBytes`); only a path suffix varies;
- a response is read as its status line, its headers up to the blank line and a
  ``Content-Length`` body. uvicorn (h11) sends ``Transfer-Encoding: chunked`` only for a
  response without a ``Content-Length``, which the API's routes never produce; a chunked
  response is therefore refused as an error rather than decoded.

Plain HTTP to one host only (the benchmark talks to 127.0.0.1); no redirects, no TLS, no
compression, no retries.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

MAX_HEAD_BYTES = 65536


class HttpError(Exception):
    """No usable answer: connection refused or lost, timed out, or a response not understood."""


@dataclass(slots=True)
class Response:
    status: int
    body: bytes


class RequestBytes:
    """One request, encoded once: ``method path_prefix + suffix``, headers and a fixed body."""

    __slots__ = ("_head", "_tail")

    def __init__(
        self,
        method: str,
        path_prefix: str,
        host: str,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        lines = [f" HTTP/1.1\r\nHost: {host}\r\n"]
        lines += (f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}\r\n")
        lines.append("\r\n")
        self._head = f"{method} {path_prefix}".encode("ascii")
        self._tail = "".join(lines).encode("latin-1") + body

    def encode(self, path_suffix: str = "") -> bytes:
        """The request's bytes, with ``path_suffix`` (ASCII, already URL-safe) after the prefix."""
        if not path_suffix:
            return self._head + self._tail
        return b"".join((self._head, path_suffix.encode("ascii"), self._tail))


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self.closed = False
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Response] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, though they are one.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(HttpError(f"connection lost: {exc or 'closed by the server'}"))

    def send(self, data: bytes, timeout: float) -> asyncio.Future[Response]:
        assert self._waiter is None, "one request at a time"
        assert self._transport is not None, "not connected"
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        self._timer = loop.call_later(timeout, self._time_out)
        self._transport.write(data)
        return waiter

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _time_out(self) -> None:
        self._timer = None
        self._fail(HttpError("no response in time"))
        self.close()  # a late response would be read as the next request's

    def _fail(self, error: HttpError) -> None:
        waiter, self._waiter = self._waiter, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                self._broken("response head too large")
            return
        if self._waiter is None:
            self._broken("data received without a request")
            return
        if not buffer.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")) or not buffer[9:12].isdigit():
            self._broken(f"not an HTTP/1.x status line: {bytes(buffer[:40])!r}")
            return
        head = bytes(buffer[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            self._broken("response without Content-Length (chunked responses are not read)")
            return
        value_end = head.find(b"\r\n", at + 17)
        try:
            length = int(head[at + 17 : value_end if value_end >= 0 else None])
        except ValueError:
            self._broken("unreadable Content-Length")
            return
        body_end = end + 4 + length
        if len(buffer) < body_end:
            return
        response = Response(int(buffer[9:12]), bytes(buffer[end + 4 : body_end]))
        del buffer[:body_end]
        waiter, self._waiter = self._waiter, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if buffer or b"\r\nconnection: close" in head:
            self.close()
        if not waiter.done():
            waiter.set_result(response)

    def _broken(self, reason: str) -> None:
        self._fail(HttpError(reason))
        self.close()


class ConnectionPool:
    """``size`` keep-alive connections to ``host:port``, opened on first use and reopened
    when the server has closed them; requests take a free one or wait for one."""

    def __init__(self, host: str, port: int, size: int, timeout: float) -> None:
        self.host, self.port, self._timeout = host, port, timeout
        self._free: deque[_Connection | None] = deque([None] * size)
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()
        self._closed = False

    async def request(self, data: bytes) -> Response:
        """Send ``data`` (a whole request) and return the response; :class:`HttpError` if none."""
        connection = self._free.popleft() if self._free else await self._wait_for_connection()
        try:
            if connection is None or connection.closed:
                connection = None
                connection = await self._connect()
            return await connection.send(data, self._timeout)
        finally:
            self._release(connection)

    async def close(self) -> None:
        self._closed = True
        while self._free:
            if (connection := self._free.popleft()) is not None:
                connection.close()

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                _, connection = await loop.create_connection(_Connection, self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise HttpError(f"cannot connect to {self.host}:{self.port}: {exc!r}") from exc
        return connection

    async def _wait_for_connection(self) -> _Connection | None:
        waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._timeout):
                return await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._release(waiter.result())  # handed over just as we gave up
            else:
                waiter.cancel()
            if isinstance(exc, TimeoutError):
                raise HttpError("no free connection in time") from exc
            raise

    def _release(self, connection: _Connection | None) -> None:
        if self._closed:
            if connection is not None:
                connection.close()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._free.append(connection)
