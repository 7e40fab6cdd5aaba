"""Runs Ordinaut's components in one process until SIGTERM/SIGINT, then stops them in order."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import uvicorn

from services.runtime import tracing

if TYPE_CHECKING:
    from litestar import Litestar


class StartupError(RuntimeError):
    """The service cannot start; the message is one line for the operator."""


class _SupervisedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the supervisor owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_socket(host: str, port: int) -> socket.socket:
    """Listen on host:port, or fail with a one-line reason (e.g. the port is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # An explicit IPPROTO_TCP: asyncio only sets TCP_NODELAY on sockets whose protocol says
    # TCP, and without it every keep-alive response waits ~40 ms on Nagle + delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@dataclass
class Component:
    """A long-running part of the service (API, timer, workers) returning once ``stop`` is set."""

    name: str
    run: Callable[[asyncio.Event], Coroutine[Any, Any, None]]


def api_component(app: Litestar, sock: socket.socket, on_ready: Callable[[], None]) -> Component:
    """Serve ``app`` on ``sock`` until stopped; ``on_ready`` runs once it accepts requests."""

    async def run(stop: asyncio.Event) -> None:
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
        server = _SupervisedUvicorn(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has only a flag
            await asyncio.sleep(0.02)
        if server.started:
            on_ready()
        await asyncio.wait(
            [serving, asyncio.create_task(stop.wait())], return_when="FIRST_COMPLETED"
        )
        server.should_exit = True
        await serving

    return Component("api", run)


def settle_heap() -> None:
    """Keep the garbage collector off the request path once the process has started.

    Everything imported and built at start-up (Litestar, the MCP SDK, the schemas) lives as
    long as the process, yet a full collection walks all of it: tens to hundreds of ms with
    the loop stopped, which is what `bench api` saw as its p99 at 200 requests/s (230 ms
    against 25-46 ms with this, same machine, minutes apart). gc.freeze() moves those objects
    out of the collector's sight, as CPython's documentation suggests for long-lived servers;
    cycles made later are still collected.

    CPython's thresholds stay: a young generation of 50,000 instead of 700 made collections
    rarer but each one 15-21 ms long under `bench api` at 200/s, where 700 kept every young
    and middle collection under 5 ms for the same total.
    """
    gc.collect()
    gc.freeze()


async def supervise(components: list[Component]) -> None:
    """Run every component until SIGTERM/SIGINT or until one of them fails, then stop them all."""
    settle_heap()
    tracing.setup(_service_name(components))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        tasks = [asyncio.create_task(c.run(stop), name=c.name) for c in components]
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await stopper
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        tracing.shutdown()  # exports the spans still buffered
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise failures[0]


def _service_name(components: list[Component]) -> str:
    """The default OpenTelemetry service name: `ordinaut` for everything in one process, else
    `ordinaut-<component>` (OTEL_SERVICE_NAME wins)."""
    names = [c.name for c in components if c.name != "ops"]
    return f"ordinaut-{names[0]}" if len(names) == 1 else "ordinaut"
