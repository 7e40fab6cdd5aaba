"""Runs Ordinaut's components in one process until SIGTERM/SIGINT, then stops them in order."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import uvicorn
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
    sock = socket.socket(family, socket.SOCK_STREAM)
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
    """A long-running coroutine (timer, workers, relay) supervised beside the API."""

    name: str
    run: Callable[[asyncio.Event], Awaitable[None]]


async def serve(
    app: Litestar,
    sock: socket.socket,
    components: list[Component],
    on_ready: Callable[[], None],
) -> None:
    """Serve ``app`` on ``sock`` plus ``components`` until a stop signal or a component dies."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    server = _SupervisedUvicorn(config)
    tasks = [asyncio.create_task(server.serve(sockets=[sock]), name="api")]
    tasks += [asyncio.create_task(c.run(stop), name=c.name) for c in components]
    ready = asyncio.create_task(_announce_when_started(server, on_ready))
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    server.should_exit = True
    ready.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise failures[0]


async def _announce_when_started(server: uvicorn.Server, on_ready: Callable[[], None]) -> None:
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes only this flag
        await asyncio.sleep(0.02)
    on_ready()
