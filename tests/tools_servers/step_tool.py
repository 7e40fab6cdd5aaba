"""An HTTP tool for worker tests: counts calls per Idempotency-Key, can fail or wait on a gate.

It runs under uvicorn in a thread (``serving``), so its handlers share nothing with the test's
event loop: gates are threading events, and times are ``time.monotonic()`` (one clock for the
whole process, so the test can compare them with its own).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from tests.workers import serve_in_thread

Send = Any
Receive = Any
JSON = [(b"content-type", b"application/json")]


@dataclass
class Call:
    """One call of the tool, from the moment its request arrived until it answered."""

    path: str
    key: str
    input: Any
    started: float
    ended: float | None = None


@dataclass
class Gate:
    """Calls to /gate/NAME wait until the gate opens; ``entered`` counts the arrivals."""

    opened: threading.Event = field(default_factory=threading.Event)
    entered: int = 0


@dataclass
class StepTool:
    """An ASGI app playing a tool, answering by path.

    /ok: 200 with ``{"input": ..., "key": ...}``. /slow?seconds=S: the same after S s.
    /gate/NAME: the same once gate NAME opens. /flaky: 500 while ``failing``, else /ok.
    /cost: /ok reporting ``_cost`` = the input's ``cost`` (a tool that says what it cost).
    /reject: 400 quoting the input back. /nul: 200 with a NUL character in a string, which
    PostgreSQL cannot store (an output no run can record).
    """

    calls: list[Call] = field(default_factory=list)
    gates: dict[str, Gate] = field(default_factory=dict)
    failing: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def gate(self, name: str) -> Gate:
        """The gate called NAME (closed until opened)."""
        with self._lock:
            return self.gates.setdefault(name, Gate())

    def open_all(self) -> None:
        """Let every waiting call answer (before the server stops, or it would wait for them)."""
        with self._lock:
            for gate in self.gates.values():
                gate.opened.set()

    def count(self, key: str) -> int:
        """How many calls arrived with Idempotency-Key ``key``."""
        return self.per_key()[key]

    def per_key(self) -> Counter[str]:
        """Calls per Idempotency-Key."""
        with self._lock:
            return Counter(call.key for call in self.calls)

    def finished(self) -> list[Call]:
        """The calls that answered, in the order they arrived."""
        with self._lock:
            return [call for call in self.calls if call.ended is not None]

    async def wait_entered(self, name: str, count: int = 1, within: float = 30.0) -> None:
        """Until ``count`` calls are waiting at (or went through) gate NAME."""
        gate, deadline = self.gate(name), time.monotonic() + within
        while gate.entered < count:
            assert time.monotonic() < deadline, f"no call reached gate {name!r} in time"
            await asyncio.sleep(0.02)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        payload = json.loads(body or b"null")
        call = Call(scope["path"], headers.get("idempotency-key", ""), payload, time.monotonic())
        with self._lock:
            self.calls.append(call)
        status, answer = await self._answer(scope, call)
        call.ended = time.monotonic()
        await send({"type": "http.response.start", "status": status, "headers": JSON})
        await send({"type": "http.response.body", "body": json.dumps(answer).encode()})

    async def _answer(self, scope: dict[str, Any], call: Call) -> tuple[int, Any]:
        path: str = scope["path"]
        if path == "/slow":
            query = dict(parse_qsl(scope["query_string"].decode()))
            await asyncio.sleep(float(query.get("seconds", "0.05")))
        elif path.startswith("/gate/"):
            gate = self.gate(path.removeprefix("/gate/"))
            gate.entered += 1
            while not gate.opened.is_set():  # noqa: ASYNC110 - a threading event, set by the test
                await asyncio.sleep(0.01)
        elif path == "/flaky" and self.failing:
            return 500, {"error": "the flaky tool is failing"}
        elif path == "/cost":
            return 200, {"input": call.input, "key": call.key, "_cost": call.input.get("cost")}
        elif path == "/reject":
            return 400, {"rejected": call.input}
        elif path == "/nul":
            return 200, {"text": "before\u0000after"}
        return 200, {"input": call.input, "key": call.key}


@contextmanager
def serving(tool: StepTool) -> Iterator[str]:
    """Serve ``tool`` on 127.0.0.1; yields its base URL. Opens every gate before stopping
    (uvicorn waits for the calls in progress)."""
    with serve_in_thread(tool, lifespan="off") as base_url:
        try:
            yield base_url
        finally:
            tool.open_all()
