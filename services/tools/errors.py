"""The one error a tool call fails with, and whether trying again could help."""

from __future__ import annotations


class ToolCallError(Exception):
    """A tool call failed for ``message``.

    ``retryable`` says whether the same call could succeed later: timeouts, connection
    errors, HTTP 408/429/5xx and a dropped MCP connection are; a refusal (other 4xx), a
    body that is not JSON, an MCP tool error (``isError``) and a schema violation are not,
    because sending the same input again gives the same answer. ``retry_after`` is the
    server's Retry-After in seconds, when it sent one.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message, self.retryable, self.retry_after = message, retryable, retry_after

    def __reduce__(self) -> tuple[object, ...]:
        # Exception pickling replays ``args``, which would drop the keyword-only fields.
        return (_rebuild, (self.message, self.retryable, self.retry_after))


def _rebuild(message: str, retryable: bool, retry_after: float | None) -> ToolCallError:
    return ToolCallError(message, retryable=retryable, retry_after=retry_after)


def excerpt(text: str, limit: int = 200) -> str:
    """``text`` on one line, cut to ``limit`` characters: enough to recognise, not to flood logs."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else f"{flat[: limit - 3]}..."
