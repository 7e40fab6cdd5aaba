"""BENCHMARKS.md is generated from the stored results: figures, goals, limits, reliability."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest

from ordinaut_bench.harness import Goal, judge, run_bench
from ordinaut_bench.markdown import render, write_report

MACHINE = {"cpu": "Test CPU", "cores": 2, "memory_gib": 24.0, "os": "Linux 6", "python": "3.11.7"}


def _write(folder: Path, kind: str, name: str, record: dict[str, Any]) -> None:
    (folder / kind).mkdir(parents=True, exist_ok=True)
    base = {
        "name": name,
        "command": f"ordinaut bench {name}",
        "machine": MACHINE,
        "finished_at": "2026-11-29T12:00:00+00:00",
    }
    (folder / kind / f"{name}.json").write_text(json.dumps({**base, **record}))


def test_goals_are_judged_at_least_or_at_most() -> None:
    goals = [
        Goal("rate", 100, at_least=True, text="rate ≥ 100"),
        Goal("lag", 50, at_least=False, text="lag ≤ 50"),
        Goal("gone", 1, at_least=True, text="not measured"),
    ]
    verdicts = judge(goals, {"rate": 150.0, "lag": 51.0, "gone": float("nan")})
    assert [v["met"] for v in verdicts.values()] == [True, False, None]
    assert verdicts["rate"]["goal"] == "rate ≥ 100"


def test_a_bench_writes_its_figures_goals_and_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDINAUT_BENCH_RESULTS", str(tmp_path))

    async def measure() -> dict[str, Any]:
        return {"events_per_second": 40_000.0}

    out = io.StringIO()
    goal = Goal("events_per_second", 50_000, at_least=True, text="≥ 50,000 events/s")
    asyncio.run(run_bench("replay", measure(), goals=[goal], limits="Postgres", out=out))
    record = json.loads((tmp_path / "bench" / "replay.json").read_text())
    assert record["events_per_second"] == 40_000.0
    assert record["goals"]["events_per_second"]["met"] is False
    assert record["limits"] == "Postgres"
    assert record["machine"]["cores"] >= 1
    assert len(record["load_average"]) == 2
    assert out.getvalue().startswith("machine: ")
    assert "MISSED" in out.getvalue()


def test_the_report_has_a_section_per_bench_with_its_command_machine_and_goals(
    tmp_path: Path,
) -> None:
    _write(
        tmp_path,
        "bench",
        "runs",
        {
            "runs_per_second": 2300.5,
            "goals": {"runs_per_second": {"goal": "≥ 2,000 runs/s", "value": 2300.5, "met": True}},
            "limits": "never shown: the goal is met",
            "load_average": [7.5, 8.25],
        },
    )
    _write(
        tmp_path,
        "bench",
        "replay",
        {
            "events_per_second": 9000.0,
            "goals": {
                "events_per_second": {"goal": "≥ 50,000 events/s", "value": 9000.0, "met": False}
            },
            "limits": "One statement per event and read model.",
        },
    )
    _write(
        tmp_path,
        "bench",
        "compare",
        {
            "table": [
                {"system": "ordinaut", "jobs/s (median)": 2100.0},
                {"system": "celery", "jobs/s (median)": 700.0},
            ]
        },
    )
    text = render(tmp_path)
    assert text.index("## End-to-end run throughput") < text.index("## Ordinaut, Procrastinate")
    assert "- Command: `ordinaut bench replay`" in text
    assert "- Machine: 2 cores (Test CPU), 24.0 GiB, Linux 6, Python 3.11.7" in text
    assert "| runs_per_second | 2,300 |" in text
    assert "- Load average (1 min) at start and end: 7.5 and 8.25" in text
    assert "| ≥ 50,000 events/s | 9,000 | **missed** |" in text
    assert "**What limits it.** One statement per event and read model." in text
    assert "never shown" not in text
    assert "| celery | 700 |" in text
    assert "No fault-suite results yet." in text


def test_the_reliability_section_lists_each_fault_summary(tmp_path: Path) -> None:
    summary = "faults: worker-kill 20/20 recovered, 0 lost, 0 duplicated"
    _write(tmp_path, "faults", "worker-kill", {"summary": summary, "passed": True})
    _write(
        tmp_path,
        "faults",
        "redis-restart",
        {"summary": "faults: redis-restart 1 lost", "passed": False},
    )
    (tmp_path / "faults" / "broken.json").write_text("{not json")
    path = write_report(tmp_path / "BENCHMARKS.md", tmp_path)
    text = path.read_text()
    reliability = text[text.index("## Reliability") :]
    assert "worker-kill 20/20 recovered, 0 lost, 0 duplicated | passed |" in reliability
    assert "redis-restart 1 lost | **failed** |" in reliability
    assert "broken.json" in reliability
    assert "No benchmark results yet" in text


def test_the_report_keeps_what_it_has_no_result_for(tmp_path: Path) -> None:
    # Results are kept per machine, not in git: regenerating on a machine that ran only one
    # benchmark keeps the others' sections (and goal rows, and reliability) as they were.
    _write(tmp_path, "bench", "append", {"single_c16_commands_per_s": 1200.0})
    _write(
        tmp_path / "old",
        "bench",
        "runs",
        {
            "runs_per_second": 2300.5,
            "goals": {"runs_per_second": {"goal": "≥ 2,000 runs/s", "value": 2300.5, "met": True}},
        },
    )
    _write(tmp_path / "old", "bench", "append", {"single_c16_commands_per_s": 1.0})
    _write(
        tmp_path / "old",
        "faults",
        "worker-kill",
        {"summary": "faults: worker-kill ok", "passed": True},
    )
    previous = render(tmp_path / "old")
    report = render(tmp_path, previous)
    assert "## End-to-end run throughput (`bench runs`)" in report
    assert "_Carried over from the previous report" in report
    assert "| `runs` | ≥ 2,000 runs/s | 2,300 | met |" in report
    assert "| single_c16_commands_per_s | 1,200 |" in report
    assert "| single_c16_commands_per_s | 1.00 |" not in report
    assert "faults: worker-kill ok" in report
    assert render(tmp_path, "").count("Carried over") == 0
    # Regenerating again carries the same section once more, saying so once.
    assert render(tmp_path, report).count("Carried over") == report.count("Carried over") == 1
