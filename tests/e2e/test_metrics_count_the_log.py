"""`ordinaut_events_appended_total` counts what the log holds, whatever path appended it.

Metrics are per process. `ordinaut up` runs every path (API, timer, worker, ingest) in one
process, so that process's /metrics (ORDINAUT_METRICS_PORT) must equal the log, type by type; in a
split deployment the sum over the processes does.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as redis
from prometheus_client.parser import text_string_to_metric_families

from services.runtime.runtime_file import read_runtime
from tests.e2e.conftest import free_port
from tests.workers import eventually

ECHO = {"pipeline": [{"id": "say", "uses": "debug.echo", "with": {"x": 1}}]}


def appended(metrics_text: str) -> Counter[str]:
    """ordinaut_events_appended_total by type, from Prometheus text."""
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "ordinaut_events_appended_total":
                counts[sample.labels["type"]] += int(sample.value)
    return counts


@pytest.mark.timeout(240)
async def test_appended_events_metric_equals_the_log_by_type(
    tmp_path: Path, start_service: Any
) -> None:
    data_dir = tmp_path / "data"
    ops_port = free_port()
    service = start_service(data_dir, {"ORDINAUT_METRICS_PORT": str(ops_port)})
    await service.wait_ready()
    runtime = read_runtime(data_dir)
    assert runtime is not None
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    async with service.client() as client:
        tasks = [  # POST /tasks: the timer fires the first, events fire the second
            {"title": "once", "schedule_kind": "once", "schedule_expr": soon, "payload": ECHO},
            {
                "title": "on paid",
                "schedule_kind": "event",
                "schedule_expr": "paid.*",
                "payload": ECHO,
            },
        ]
        for body in tasks:
            response = await client.post("/tasks", json=body)
            assert response.status_code == 201, response.text
        response = await client.post("/events", json={"topic": "paid.api", "payload": {}})
        assert response.status_code == 202, response.text
        async with redis.Redis.from_url(runtime.redis_url) as producer:
            await producer.xadd("ordinaut:ingest", {"topic": "paid.ingest", "payload": "{}"})

        async def three_runs_done() -> bool:
            runs = (await client.get("/runs", params={"status": "succeeded"})).json()["items"]
            return len(runs) == 3  # one timer run, two event runs; all ran on the worker

        await eventually(three_runs_done, within=60)

    conn = await asyncpg.connect(runtime.database_url)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ops_port}") as ops:

            async def metric_matches_log() -> tuple[Counter[str], Counter[str]] | None:
                rows = await conn.fetch("SELECT type, count(*) AS n FROM events GROUP BY type")
                log = Counter({row["type"]: row["n"] for row in rows})
                metric = appended((await ops.get("/metrics")).text)
                return (log, metric) if log == metric else None

            log, _ = await eventually(metric_matches_log, within=20)
    finally:
        await conn.close()
    # Every path appended something: API commands, POST /events, ingest, timer and worker.
    assert {"task.created", "event.received", "run.queued", "run.succeeded"} <= set(log)
    assert log["event.received"] == 2, json.dumps(log)
    assert service.stop() == 0
