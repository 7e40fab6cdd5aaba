"""Tracing: off unless OTEL_* asks, free when off, and what its helpers make of trace contexts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from domain.envelope import EventMeta, decode_meta, encode_meta
from services.ingest.entries import Entry, Refused, read_entry
from services.runtime import tracing

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
            False,
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
                "OTEL_TRACES_EXPORTER": "none",
            },
            False,
        ),
    ],
)
def test_traces_are_requested_only_by_an_otlp_endpoint(
    environ: dict[str, str], wanted: bool
) -> None:
    assert tracing.requested(environ) is wanted


def test_with_tracing_off_the_helpers_do_nothing() -> None:
    assert not tracing.enabled()
    meta = EventMeta(actor="a", correlation_id="c")
    assert tracing.stamped(meta) is meta
    headers: dict[str, str] = {}
    tracing.inject(headers)
    assert headers == {}
    with tracing.span("x") as span, tracing.continued(TRACEPARENT):
        assert span is None
    assert tracing.current_ids() is None
    assert tracing.add_trace_ids(None, "info", {"event": "e"}) == {"event": "e"}


def test_an_event_meta_without_a_trace_context_reads_and_writes_as_before() -> None:
    old = '{"actor":"a","correlation_id":"c"}'
    assert decode_meta(old) == EventMeta(actor="a", correlation_id="c")
    assert encode_meta(decode_meta(old)) == old
    traced = EventMeta(actor="a", correlation_id="c", traceparent=TRACEPARENT)
    assert decode_meta(encode_meta(traced)).traceparent == TRACEPARENT


def test_the_trace_id_is_read_from_a_traceparent() -> None:
    assert tracing.trace_id_of(TRACEPARENT) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert tracing.trace_id_of(None) is None
    assert tracing.trace_id_of("00-" + "0" * 32 + "-00f067aa0ba902b7-01") is None
    assert tracing.trace_id_of("garbage") is None


def _entry(**fields: str) -> Entry:
    base = {"topic": "build.done", "payload": "{}", **fields}
    return Entry("1-0", {k.encode(): v.encode() for k, v in base.items()})


def test_an_ingest_entry_carries_its_traceparent_into_the_event_meta() -> None:
    publication = read_entry(_entry(traceparent=TRACEPARENT), "ordinaut:ingest", 1000)
    assert publication.meta.traceparent == TRACEPARENT
    assert read_entry(_entry(), "ordinaut:ingest", 1000).meta.traceparent is None
    with pytest.raises(Refused, match="traceparent: not a W3C traceparent"):
        read_entry(_entry(traceparent="00-abc-def-01"), "ordinaut:ingest", 1000)


# redis-py (opentelemetry.sdk.metrics, for its own opt-in metrics) and Litestar (the ASGI
# instrumentation, to look for its plugin) import parts of OpenTelemetry whenever installed;
# what tracing itself would load, the SDK's tracing and the exporter, must stay unloaded.
OFF_PATH = textwrap.dedent(
    """
    import asyncio, sys
    from opentelemetry import trace
    from services.api.app import ApiConfig, create_app
    from services.runtime import tracing
    from services.runtime.supervisor import Component, supervise
    import services.worker.service, services.timer.service, services.relay.service
    import services.ingest.consumer, services.notify.service

    create_app(ApiConfig("postgresql://127.0.0.1:1/x", "redis://127.0.0.1:1", b"0" * 32))
    async def once(stop): return None
    asyncio.run(supervise([Component("api", once)]))
    loaded = sorted(m for m in sys.modules
                    if m.startswith(("opentelemetry.sdk.trace", "opentelemetry.exporter")))
    print(tracing.enabled(), type(trace.get_tracer_provider()).__name__, loaded)
    """
)


def test_with_no_otel_variables_no_process_loads_the_tracing_sdk() -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", OFF_PATH],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False ProxyTracerProvider []"


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Tracing on, into memory, through a provider of its own (the global one is untouched)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    return exporter


def test_appended_events_carry_the_current_span_and_their_effects_continue_it(
    exported: Any,
) -> None:
    with tracing.span("ordinaut.command") as command:
        assert command is not None
        meta = tracing.stamped(EventMeta(actor="a", correlation_id="c"))
        ids = tracing.current_ids()
        logged = tracing.add_trace_ids(None, "info", {"event": "e"})
    assert ids is not None
    assert (meta.traceparent or "").startswith(f"00-{ids[0]}-{ids[1]}-")
    assert logged == {"event": "e", "trace_id": ids[0], "span_id": ids[1]}
    kept = EventMeta(actor="a", correlation_id="c", traceparent=TRACEPARENT)
    assert tracing.stamped(kept) is kept  # an ingest entry's own context is kept
    with tracing.continued(meta), tracing.span("ordinaut.run"):
        headers: dict[str, str] = {}
        tracing.inject(headers)
    run = exported.get_finished_spans()[-1]
    assert run.parent.span_id == int(ids[1], 16)
    assert run.context.trace_id == int(ids[0], 16)
    assert headers["traceparent"].startswith(f"00-{ids[0]}-{run.context.span_id:016x}-")


def test_a_failing_span_names_the_exception_type_only(exported: Any) -> None:
    with pytest.raises(ValueError, match="secret"), tracing.span("ordinaut.step", {"k": "v"}):
        raise ValueError("the secret value")
    (failed,) = exported.get_finished_spans()
    assert failed.status.description == "ValueError"
    assert not failed.events  # no recorded exception, whose message could hold a secret
    assert dict(failed.attributes) == {"k": "v"}
