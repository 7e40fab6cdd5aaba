"""OpenTelemetry traces: off unless the standard ``OTEL_*`` variables ask for them.

Every process calls `setup` once at start-up (the supervisor does). With no OTLP endpoint
configured (or ``OTEL_SDK_DISABLED=true``, ``OTEL_TRACES_EXPORTER=none``) nothing is imported
and every helper here returns at its first line, so tracing costs nothing when off. When on,
the SDK exports spans in batches over OTLP/HTTP; the exporter itself reads the rest of the
standard variables (headers, timeouts, protocol paths).

The trace context travels with the work in each event's meta (`EventMeta.traceparent`): the
store stamps the current context on what it appends (`stamped`), and whoever acts on an event
later continues its trace (`continued`). Span attributes hold identifiers, types and counts
only, never step inputs, outputs or exception messages (they may hold secrets).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

import msgspec

from domain.envelope import EventMeta

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

Attributes = Mapping[str, str | int | float | bool | Sequence[str]]
Kind = Literal["internal", "server", "client", "producer", "consumer"]
P = ParamSpec("P")
R = TypeVar("R")

_tracer: Tracer | None = None
_provider: Any = None
_OFF = contextlib.nullcontext()


def requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the standard variables ask for traces: an OTLP endpoint, SDK not disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() in ("none", ""):
        return False
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def enabled() -> bool:
    """Whether this process exports traces (after `setup`)."""
    return _tracer is not None


def setup(process: str) -> None:
    """Start exporting if the environment asks for it; ``process`` names the service when
    ``OTEL_SERVICE_NAME`` does not. Safe to call more than once."""
    global _tracer, _provider
    if _tracer is not None or not requested():
        return
    # Imported only here: a process with tracing off never loads the SDK.
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, which win.
    default = Resource({SERVICE_NAME: process})
    provider = TracerProvider(resource=default.merge(Resource.create()))
    delay, size = _batch_defaults()
    processor = BatchSpanProcessor(
        OTLPSpanExporter(), schedule_delay_millis=delay, max_export_batch_size=size
    )
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _provider = provider
    _tracer = trace.get_tracer("ordinaut")


# Smaller, more frequent exports than the SDK's (512 spans every 5 s): encoding a big batch
# holds the GIL long enough to stall the event loop (bench api p99 ~600 ms, bench runs halved);
# 128 every 0.5 s keeps each pause short. OTEL_BSP_* still win when set.
def _batch_defaults() -> tuple[float | None, int | None]:
    """(delay ms, batch size) unless OTEL_BSP_* set them (None: the SDK reads the variable)."""
    delay = None if "OTEL_BSP_SCHEDULE_DELAY" in os.environ else 500.0
    size = None if "OTEL_BSP_MAX_EXPORT_BATCH_SIZE" in os.environ else 128
    return delay, size


def api_plugins() -> list[Any]:
    """Litestar's OpenTelemetry plugin (one server span per request, continuing an incoming
    ``traceparent``) when traces are requested; nothing otherwise. Decided when the app is
    built, which happens before `setup`: its tracer is the global proxy, bound at `setup`."""
    if not requested():
        return []
    from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin

    # No send/receive child spans: one per ASGI message says nothing an operator needs.
    return [OpenTelemetryPlugin(OpenTelemetryConfig(exclude_spans=["receive", "send"]))]


def shutdown() -> None:
    """Export what is still buffered (on a clean stop)."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer, _provider = None, None


def span(
    name: str,
    attributes: Attributes | None = None,
    *,
    kind: Kind = "internal",
    parent: EventMeta | str | None = None,
    start_time: datetime | None = None,
) -> contextlib.AbstractContextManager[Span | None]:
    """A span around a block, child of the current span (or of ``parent``: an event's meta or
    a traceparent). Failures mark it as an error by exception type only."""
    if _tracer is None:
        return _OFF
    return _span(name, attributes, kind, parent, start_time)


@contextlib.contextmanager
def _span(
    name: str,
    attributes: Attributes | None,
    kind: Kind,
    parent: EventMeta | str | None,
    start_time: datetime | None,
) -> Iterator[Span]:
    from opentelemetry.trace import SpanKind, Status, StatusCode

    assert _tracer is not None
    context = _extract(parent) if parent is not None else None
    start = None if start_time is None else int(start_time.timestamp() * 1e9)
    with _tracer.start_as_current_span(
        name,
        context=context,
        kind=SpanKind[kind.upper()],
        attributes=attributes,
        start_time=start,
        record_exception=False,  # its message may quote a secret or a step's input
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except Exception as exc:
            current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


def aspan(
    name: str, attributes: Attributes | None = None, *, kind: Kind = "internal"
) -> contextlib.AbstractAsyncContextManager[Span | None]:
    """`span` for an ``async with`` (to share a line with other async context managers)."""
    if _tracer is None:
        return _OFF
    return _AsyncSpan(span(name, attributes, kind=kind))


class _AsyncSpan(contextlib.AbstractAsyncContextManager["Span | None"]):
    def __init__(self, inner: contextlib.AbstractContextManager[Span | None]) -> None:
        self._inner = inner

    async def __aenter__(self) -> Span | None:
        return self._inner.__enter__()

    async def __aexit__(self, *exc: Any) -> bool | None:
        return self._inner.__exit__(*exc)


def traced(
    name: str, attributes: Callable[..., Attributes] | None = None, *, kind: Kind = "internal"
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorate a coroutine function with a span; ``attributes`` gets the call's arguments."""

    def decorate(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(function)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if _tracer is None:
                return await function(*args, **kwargs)
            found = attributes(*args, **kwargs) if attributes is not None else None
            with span(name, found, kind=kind):
                return await function(*args, **kwargs)

        return wrapper

    return decorate


@contextlib.contextmanager
def continued(cause: EventMeta | str | None) -> Iterator[None]:
    """Make the trace of ``cause`` (an event's meta or a traceparent) current in the block,
    so what it appends and calls continues that trace."""
    if _tracer is None or cause is None:
        yield
        return
    from opentelemetry import context as otel_context

    token = otel_context.attach(_extract(cause))
    try:
        yield
    finally:
        otel_context.detach(token)


def stamped(meta: EventMeta) -> EventMeta:
    """``meta`` carrying the current trace context (unless it already carries one)."""
    if _tracer is None or meta.traceparent is not None:
        return meta
    carrier: dict[str, str] = {}
    _inject(carrier)
    if "traceparent" not in carrier:
        return meta
    return msgspec.structs.replace(
        meta, traceparent=carrier["traceparent"], tracestate=carrier.get("tracestate")
    )


def current_traceparent() -> str | None:
    """The current span's W3C traceparent (None when off or outside a span)."""
    if _tracer is None:
        return None
    carrier: dict[str, str] = {}
    _inject(carrier)
    return carrier.get("traceparent")


def stamped_all(commands: Sequence[Any]) -> list[Any]:
    """Each command (a dataclass with a ``meta``) with `stamped` meta."""
    if _tracer is None:
        return list(commands)
    return [dataclasses.replace(c, meta=stamped(c.meta)) for c in commands]


def inject(headers: MutableMapping[str, str]) -> None:
    """Add ``traceparent`` (and ``tracestate``) of the current span to outgoing headers."""
    if _tracer is not None:
        _inject(headers)


def current_ids() -> tuple[str, str] | None:
    """The current trace and span ids as hex, or None outside a recorded span."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def add_trace_ids(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: a log line written inside a span names its trace and span."""
    if _tracer is not None:
        ids = current_ids()
        if ids is not None:
            event_dict.setdefault("trace_id", ids[0])
            event_dict.setdefault("span_id", ids[1])
    return event_dict


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id inside a W3C traceparent (for showing it), or None if it has none."""
    parts = (traceparent or "").split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
        return parts[1]
    return None


def _inject(carrier: MutableMapping[str, str]) -> None:
    from opentelemetry.propagate import inject as propagate

    propagate(carrier)


def _extract(cause: EventMeta | str) -> Any:
    from opentelemetry.propagate import extract

    if isinstance(cause, EventMeta):
        carrier = {"traceparent": cause.traceparent or ""}
        if cause.tracestate:
            carrier["tracestate"] = cause.tracestate
    else:
        carrier = {"traceparent": cause}
    return extract(carrier)
