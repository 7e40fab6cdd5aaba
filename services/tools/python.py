"""The `python` transport: call an allow-listed function in the worker's own process.

A sync function runs in a thread of the tools' own pool (so it cannot stall the worker's
event loop, and a hung one cannot starve the loop's default executor, which DNS lookups
use); an async one is awaited. Arguments are the step's validated input, passed as keyword
arguments; the return value must be JSON-compatible. An exception becomes the step's
error, with its type and message. A sync function that overruns its timeout is abandoned,
not stopped: Python cannot kill a thread, so the step fails at once and the thread
finishes in the background.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib
import inspect
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec

from domain.events import ToolRegistered
from domain.tools import callable_module, python_module_allowed
from services.tools.errors import ToolCallError


class CallableNotFound(LookupError):
    """The callable cannot be imported; the message says why."""


def resolve_callable(target: str) -> Callable[..., Any]:
    """The function "package.module:function" names (imported on first use)."""
    module_name, _, attribute = target.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except Exception as exc:
        reason = f"cannot import {module_name!r}: {type(exc).__name__}: {exc}"
        raise CallableNotFound(reason) from None
    for part in attribute.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise CallableNotFound(f"{module_name!r} has no attribute {attribute!r}")
    if not callable(found):
        raise CallableNotFound(f"{target!r} is not callable")
    return found  # type: ignore[no-any-return]


class PythonTools:
    """Calls python tools whose modules the admin allows (checked again at every call)."""

    def __init__(self, allow: tuple[str, ...] = (), threads: int = 16) -> None:
        self.allow = allow
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="ordinaut-python-tool")

    def close(self) -> None:
        """Stop taking calls; threads still running a call finish in the background."""
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def call(self, tool: ToolRegistered, arguments: dict[str, Any]) -> Any:
        """The function's JSON-compatible result; ToolCallError for any failure."""
        target = tool.callable or ""
        if not python_module_allowed(callable_module(target), self.allow):
            raise ToolCallError(
                f"{tool.address}: module {callable_module(target)!r} is not allowed "
                "(ORDINAUT_PYTHON_TOOLS_ALLOW)",
                retryable=False,
            )
        try:
            function = resolve_callable(target)
        except CallableNotFound as exc:
            raise ToolCallError(f"{tool.address}: {exc}", retryable=False) from None
        try:
            if inspect.iscoroutinefunction(function):
                result = await function(**arguments)
            else:
                call = functools.partial(contextvars.copy_context().run, function, **arguments)
                result = await asyncio.get_running_loop().run_in_executor(self._threads, call)
        except Exception as exc:
            raise ToolCallError(
                f"{tool.address} raised {type(exc).__name__}: {exc}", retryable=False
            ) from None
        try:
            return msgspec.to_builtins(result)
        except (TypeError, msgspec.EncodeError) as exc:
            raise ToolCallError(
                f"{tool.address} returned a value that is not JSON: {exc}", retryable=False
            ) from None
