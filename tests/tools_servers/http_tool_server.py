"""Real local servers for the transport tests: an HTTP tool server, and uvicorn in a thread."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn

Send = Any
Receive = Any


@dataclass
class Received:
    """One request the tool server answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ToolServer:
    """An ASGI app playing a tool: it records every request and answers by path.

    /echo: 200 with the JSON input and the Idempotency-Key it came with. /status/N: status N
    (429 adds Retry-After: 7). /not-json: 200 with HTML. /slow?seconds=S: 200 after S s.
    /empty: 204. /redirect?to=URL: 302 to URL. /reflect: the request as JSON (any method).
    /set-cookie: sets a cookie. /big: a body of 2 MiB.
    """

    received: list[Received] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.received.append(Received(scope["method"], scope["path"], headers, body))
        query = dict(parse_qsl(scope["query_string"].decode()))
        status, extra, payload = await self._answer(scope, headers, query, body)
        await send({"type": "http.response.start", "status": status, "headers": extra})
        await send({"type": "http.response.body", "body": payload})

    async def _answer(
        self, scope: dict[str, Any], headers: dict[str, str], query: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        path: str = scope["path"]
        as_json = [(b"content-type", b"application/json")]
        if path == "/echo":
            answer = {
                "input": json.loads(body or b"null"),
                "idempotency_key": headers.get("idempotency-key"),
            }
            return 200, as_json, json.dumps(answer).encode()
        if path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
            extra = [(b"retry-after", b"7")] if status == 429 else []
            return status, extra, f"status {status}: database exploded".encode()
        if path == "/not-json":
            return 200, [(b"content-type", b"text/html")], b"<html><p>Oops</p></html>"
        if path == "/slow":
            await asyncio.sleep(float(query.get("seconds", "2")))
            return 200, as_json, b"{}"
        if path == "/empty":
            return 204, [], b""
        if path == "/redirect":
            return 302, [(b"location", query["to"].encode())], b""
        if path == "/set-cookie":
            return 200, [*as_json, (b"set-cookie", b"session=secret; Path=/")], b"{}"
        if path == "/big":
            return 200, as_json, b'"' + b"x" * (2 * 1024 * 1024) + b'"'
        reflected = {
            "method": scope["method"],
            "query": scope["query_string"].decode(),
            "headers": headers,
            "body": body.decode(),
        }
        return 200, [*as_json, (b"x-tool", b"a"), (b"x-tool", b"b")], json.dumps(reflected).encode()


@contextmanager
def serve(app: Any, *, lifespan: str = "auto") -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan=lifespan)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "uvicorn did not start (its log is in the captured output)"
            assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop within 30 s"


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
