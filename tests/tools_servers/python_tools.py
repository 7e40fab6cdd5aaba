"""Python tools for tests: a sync one, an async one, and one that raises."""

from __future__ import annotations

import asyncio
import threading
import time


def add(a: int, b: int) -> dict[str, object]:
    """Sync: runs in a worker thread, not on the event loop's thread."""
    return {"sum": a + b, "in_thread": threading.current_thread() is not threading.main_thread()}


async def greet(name: str) -> dict[str, str]:
    """Async: awaited on the worker's loop."""
    await asyncio.sleep(0)
    return {"greeting": f"Hello, {name}"}


def explode(reason: str) -> dict[str, str]:
    """Always fails, so the step records the exception's type and message."""
    raise ValueError(reason)


def slow(seconds: float) -> dict[str, bool]:
    """Sync and slow: overruns a short timeout (its thread is abandoned, not killed)."""
    time.sleep(seconds)
    return {"done": True}


not_callable = 42
