"""The relay's Prometheus metrics (served with the others on /metrics)."""

from __future__ import annotations

from prometheus_client import Histogram

RELAY_LAG = Histogram(
    "ordinaut_relay_lag_seconds",
    "Time from an event's commit (recorded_at) to its XADD on the events stream",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
