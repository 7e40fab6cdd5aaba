"""The compose deployment is checked, not just shipped: its files parse and fit together, and
every metric its alert rules and dashboard use is served by every process on its ops port."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from tests.e2e.conftest import free_port

COMPOSE = Path(__file__).parents[2] / "compose"
PROCESSES = ["api", "timer", "worker", "relay", "notifier", "ingest"]
_METRIC = re.compile(r"\bordinaut_[a-z_]+")
_DURATION = re.compile(r"^\d+[smhd]$")


def _load(path: str) -> Any:
    return yaml.safe_load((COMPOSE / path).read_text())


def used_metrics() -> set[str]:
    """Metric families named by the alert rules and the dashboard."""
    exprs = [
        rule["expr"]
        for group in _load("prometheus/alerts.yml")["groups"]
        for rule in group["rules"]
    ]
    dashboard = json.loads((COMPOSE / "grafana/dashboards/ordinaut.json").read_text())
    exprs += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    names = {name for expr in exprs for name in _METRIC.findall(expr)}
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in names}


def test_the_compose_file_runs_every_process_and_prometheus_scrapes_them_all() -> None:
    services = _load("docker-compose.yml")["services"]
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"].startswith("redis:7")
    assert services["timer"]["deploy"]["replicas"] == 2
    assert services["jaeger"]["image"].startswith("jaegertracing/jaeger:2")
    assert services["worker"]["deploy"]["replicas"] == 3
    for name in PROCESSES:
        assert services[name]["command"] == [name]
        assert services[name]["environment"]["ORDINAUT_METRICS_PORT"] == "9464"
        assert services[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
            "http://jaeger:4318"
        )
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    scrape = _load("prometheus/prometheus.yml")["scrape_configs"][0]["dns_sd_configs"][0]
    assert sorted(scrape["names"]) == sorted(PROCESSES)
    assert scrape["port"] == 9464
    for mount in services["grafana"]["volumes"] + services["prometheus"]["volumes"]:
        assert (COMPOSE / mount.split(":")[0]).exists(), mount


def test_alert_rules_are_well_formed() -> None:
    rules = [rule for group in _load("prometheus/alerts.yml")["groups"] for rule in group["rules"]]
    assert {r["alert"] for r in rules} >= {
        "OrdinautTimerLagging",
        "OrdinautBacklogAging",
        "OrdinautDeadLetters",
        "OrdinautWebhooksFailing",
        "OrdinautNoWorkers",
    }
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
        assert "for" not in rule or _DURATION.match(rule["for"]), rule
        depth = 0
        for char in rule["expr"]:
            depth += {"(": 1, ")": -1}.get(char, 0)
            assert depth >= 0, rule["expr"]
        assert depth == 0, rule["expr"]


@pytest.mark.timeout(120)
def test_every_process_serves_every_metric_the_rules_and_dashboard_use(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    wanted = used_metrics()
    assert len(wanted) >= 8, wanted
    stream = f"test-{uuid.uuid4().hex}:events"
    ports = {name: free_port() for name in PROCESSES}
    started = []
    for name, port in ports.items():
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
        env.update(
            ORDINAUT_DATABASE_URL=database_url,
            ORDINAUT_REDIS_URL=redis_url,
            ORDINAUT_METRICS_PORT=str(port),
            ORDINAUT_PORT=str(free_port()),
            ORDINAUT_EVENTS_STREAM=stream,
            ORDINAUT_DATA_DIR=str(tmp_path / "data"),
            ORDINAUT_ADMIN_TOKEN="admin-token-for-compose-test",
            ORDINAUT_LOG_LEVEL="warning",
        )
        with (tmp_path / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.cli.main", name],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append((name, process))
    try:
        for name, port in ports.items():
            text = _scrape(f"http://127.0.0.1:{port}", tmp_path / f"{name}.log")
            exposed = set(re.findall(r"^# TYPE (\S+)", text, re.MULTILINE))
            missing = sorted(wanted - exposed)
            assert not missing, f"{name} does not export {missing}"
    finally:
        for _, process in started:
            process.send_signal(signal.SIGTERM)
        codes = {name: process.wait(30) for name, process in started}
        with redis.Redis.from_url(redis_url) as client:
            client.delete(stream)
    assert codes == dict.fromkeys(PROCESSES, 0), codes


def _scrape(base_url: str, log: Path) -> str:
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=base_url, timeout=5) as client:
        while True:
            try:
                if client.get("/health/ready").status_code == 200:
                    return client.get("/metrics").text
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
