"""Every Prometheus metric Ordinaut exports, in one place (names are a public interface:
alert rules and dashboards in compose/ refer to them, and a test checks they exist)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)

EVENTS_APPENDED = Counter(
    "ordinaut_events_appended", "Events appended to the store, by type", ["type"]
)
RUNS = Counter(
    "ordinaut_runs",
    "Run outcomes recorded by workers: succeeded, attempt_failed, dead, canceled, deduplicated",
    ["status"],
)
RUN_DURATION = Histogram(
    "ordinaut_run_duration_seconds", "From a run's start to its end (one attempt)", buckets=_SECONDS
)
STEP_DURATION = Histogram(
    "ordinaut_step_duration_seconds", "Tool call duration by tool", ["tool"], buckets=_SECONDS
)
STEP_FAILURES = Counter("ordinaut_step_failures", "Failed steps by tool", ["tool"])
RELAY_LAG = Histogram(
    "ordinaut_relay_lag_seconds",
    "Time from an event's commit (recorded_at) to its XADD on the events stream",
    buckets=_SECONDS,
)
TIMER_LAG = Histogram(
    "ordinaut_timer_lag_seconds",
    "From an occurrence's due instant to its task.due being recorded",
    buckets=_SECONDS,
)
DUE_WORK_READY = Gauge("ordinaut_due_work_ready", "Due work that no worker holds")
DUE_WORK_OLDEST = Gauge(
    "ordinaut_due_work_oldest_seconds", "How long the oldest ready work has been waiting"
)
EVENT_HORIZON_AGE = Gauge(
    "ordinaut_event_horizon_age_seconds",
    "Age of the oldest open transaction that has written (anywhere in the cluster): readers"
    " of the event log wait for it; /health names it",
)
RUNS_WAITING = Gauge(
    "ordinaut_runs_waiting", "Runs parked at a wait_for_event or sleep step (holding no worker)"
)
WORKERS_ALIVE = Gauge("ordinaut_workers_alive", "Workers that reported in the last 30 s")
STREAM_PENDING = Gauge(
    "ordinaut_stream_pending", "Entries read but not acknowledged", ["stream", "group"]
)
DEAD_LETTERS = Counter("ordinaut_dead_letters", "Entries moved to a dead-letter stream", ["stream"])
WEBHOOK_DELIVERIES = Counter(
    "ordinaut_webhook_deliveries", "Webhook delivery attempts by result", ["result"]
)

__all__ = [
    "DEAD_LETTERS",
    "DUE_WORK_OLDEST",
    "DUE_WORK_READY",
    "EVENTS_APPENDED",
    "RELAY_LAG",
    "RUNS",
    "RUN_DURATION",
    "STEP_DURATION",
    "STEP_FAILURES",
    "STREAM_PENDING",
    "TIMER_LAG",
    "WEBHOOK_DELIVERIES",
    "WORKERS_ALIVE",
]
