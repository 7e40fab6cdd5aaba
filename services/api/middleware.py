"""Per-request correlation id (bound into every log line) and one access-log line per request."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

CORRELATION_HEADER = "x-correlation-id"
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_log = structlog.get_logger("ordinaut.api")


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == CORRELATION_HEADER.encode():
            text = value.decode("latin-1")
            return text if _ACCEPTABLE_ID.match(text) else None
    return None


def correlation_middleware(app: ASGIApp) -> ASGIApp:
    """Give each request a correlation id (the caller's if well-formed) and log it."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        # Read now: a mounted app (/mcp) sees its path rewritten to what follows the mount.
        method, path = scope["method"], scope["path"]
        correlation_id = _incoming_id(scope) or str(uuid.uuid4())
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        status: dict[str, Any] = {"code": 500}
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((CORRELATION_HEADER.encode(), correlation_id.encode()))
                message["headers"] = headers
            await send(message)

        with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
            try:
                await app(scope, receive, send_with_id)
            finally:
                _log.info(
                    "request",
                    method=method,
                    path=path,
                    status=status["code"],
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )

    return middleware
