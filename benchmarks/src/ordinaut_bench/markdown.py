"""BENCHMARKS.md, generated from the JSON results (results.py): a section per benchmark with its
figures, goals, command, machine and date, and a "Reliability" section from the fault suite."""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ordinaut_bench.results import results_dir

REPORT = Path("BENCHMARKS.md")
# Benchmarks in reading order; any other name follows, alphabetically.
ORDER = ("runs", "compare", "timer", "ingest", "replay", "up", "ui", "append", "api")
TITLES = {
    "runs": "End-to-end run throughput (`bench runs`)",
    "compare": "Ordinaut, Procrastinate and Celery side by side (`bench compare`)",
    "timer": "Timer fire lag (`bench timer`)",
    "ingest": "Ingest throughput and relay lag (`bench ingest`)",
    "replay": "Projection rebuild (`bench replay`)",
    "up": "Start-up time (`bench up`)",
    "ui": "Dashboard pages with 10,000 tasks and 100,000 runs (`bench ui`)",
    "append": "Event store appends (`bench append`)",
    "api": "API latency at a fixed rate (`bench api`)",
}
_RECORD_KEYS = {
    "name",
    "command",
    "machine",
    "finished_at",
    "goals",
    "limits",
    "table",
    "load_average",
}
# Where each benchmark keeps its LIMITS text, for results stored before it was written.
_LIMITS_IN = {
    "runs": "ordinaut_bench.runs",
    "compare": "ordinaut_bench.compare.driver",
    "timer": "ordinaut_bench.timer",
    "replay": "ordinaut_bench.replay",
    "up": "ordinaut_bench.up",
}


def load(kind: str, folder: Path | None = None) -> list[dict[str, Any]]:
    """Every ``<results>/<kind>/*.json`` record (unreadable files are named, not fatal)."""
    records = []
    for path in sorted(((folder or results_dir()) / kind).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            record = {"name": path.stem, "unreadable": f"{path.name}: {exc}"}
        if isinstance(record, dict):
            records.append(record)
    return records


def _number(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"
    return f"{int(value):,}"


def _cell(value: object) -> str:
    return _number(value).replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: Iterable[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def machine_text(machine: object) -> str:
    """The record's machine as one line (as ``describe_machine`` prints it)."""
    if not isinstance(machine, dict):
        return "unknown machine"
    return (
        f"{machine.get('cores', '?')} cores ({machine.get('cpu', '?')}),"
        f" {machine.get('memory_gib', '?')} GiB, {machine.get('os', '?')},"
        f" Python {machine.get('python', '?')}"
    )


def _verdict(met: object) -> str:
    if met is True:
        return "met"
    return "**missed**" if met is False else "not measured"


def _figures_table(record: dict[str, Any]) -> list[str]:
    rows = record.get("table")
    if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
        headers = list(rows[0])
        return _table(headers, ([row.get(h, "") for h in headers] for row in rows))
    figures: list[list[object]] = [
        [key, value]
        for key, value in record.items()
        if key not in _RECORD_KEYS and isinstance(value, int | float)
    ]
    return _table(["figure", "value"], figures) if figures else []


def _current_limits(name: str) -> str | None:
    """The LIMITS text the benchmark's module holds now (None if it has none)."""
    module = _LIMITS_IN.get(name.split("-workers-")[0])
    if module is None:
        return None
    limits = getattr(importlib.import_module(module), "LIMITS", None)
    return limits if isinstance(limits, str) else None


def _goals(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    goals = record.get("goals")
    return (
        {k: v for k, v in goals.items() if isinstance(v, dict)} if isinstance(goals, dict) else {}
    )


def _title(name: str) -> str:
    if name.startswith("runs-workers-"):
        workers = name.removeprefix("runs-workers-")
        noun = "worker process" if workers == "1" else "worker processes"
        return f"End-to-end run throughput, {workers} {noun} (`bench runs --workers {workers}`)"
    return TITLES.get(name, f"`bench {name}`")


def bench_section(record: dict[str, Any]) -> list[str]:
    """One benchmark: where it ran, its figures, its goals, and what limits a missed one."""
    name = str(record.get("name", "?"))
    lines = [f"## {_title(name)}", ""]
    if "unreadable" in record:
        return [*lines, f"Result file unreadable: {record['unreadable']}", ""]
    lines += [
        f"- Command: `{record.get('command', '?')}`",
        f"- Machine: {machine_text(record.get('machine'))}",
        f"- Finished: {record.get('finished_at', '?')}",
    ]
    load = record.get("load_average")
    if isinstance(load, list) and len(load) == 2:
        lines.append(f"- Load average (1 min) at start and end: {load[0]} and {load[1]}")
    lines.append("")
    lines += [*_figures_table(record), ""]
    goals = _goals(record)
    if goals:
        lines += _table(
            ["goal", "measured", "verdict"],
            ([g.get("goal", k), g.get("value"), _verdict(g.get("met"))] for k, g in goals.items()),
        )
        lines.append("")
    if any(g.get("met") is False for g in goals.values()):
        limits = record.get("limits") or _current_limits(name)
        text = limits if isinstance(limits, str) and limits else "not analysed yet."
        lines += [f"**What limits it.** {text}", ""]
    elif isinstance(notes := record.get("notes"), str) and notes:
        lines += [f"**What limits it.** {notes}", ""]  # a bench that explains its figures anyway
    return lines


def _summary(benches: list[dict[str, Any]]) -> list[str]:
    rows = [
        [f"`{b.get('name')}`", g.get("goal", k), g.get("value"), _verdict(g.get("met"))]
        for b in benches
        for k, g in _goals(b).items()
    ]
    if not rows:
        return []
    return ["## Goals at a glance", "", *_table(["bench", "goal", "measured", "verdict"], rows), ""]


def reliability_section(faults: list[dict[str, Any]]) -> list[str]:
    """The fault suite's summaries, one row per fault."""
    lines = ["## Reliability", ""]
    if not faults:
        return [*lines, "No fault-suite results yet.", ""]
    rows = [
        [
            f.get("name", "?"),
            f.get("summary", f.get("unreadable", "")),
            "passed" if f.get("passed") is True else "**failed**",
            f"`{f.get('command', '?')}`",
            machine_text(f.get("machine")),
            f.get("finished_at", "?"),
        ]
        for f in faults
    ]
    return [
        *lines,
        *_table(["fault", "summary", "result", "command", "machine", "finished"], rows),
        "",
    ]


def _ordered(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rank = {name: n for n, name in enumerate(ORDER)}

    def key(record: dict[str, Any]) -> tuple[int, str]:
        name = str(record.get("name"))  # runs-workers-N goes next to runs
        return rank.get(name.split("-workers-")[0], len(ORDER)), name

    return sorted(records, key=key)


def _previous_sections(previous: str) -> dict[str, list[str]]:
    """A report's ``## `` sections by heading (each with its heading line)."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in previous.splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:].strip(), [])
        if current is not None:
            current.append(line)
    return sections


_CARRIED = "_Carried over from the previous report: no result for it here._"


def _carried(previous: str, measured: set[str]) -> tuple[list[str], list[str]]:
    """From the report as it was: the goal rows and the sections of benchmarks that have no
    result here (results are kept per machine and not in git, so regenerating the report on
    one machine must not drop what another measured)."""
    sections = _previous_sections(previous)
    names = [name for name in ORDER if name not in measured and TITLES[name] in sections]
    rows = [
        line
        for line in sections.get("Goals at a glance", [])
        if any(line.startswith(f"| `{name}` |") for name in names)
    ]
    body: list[str] = []
    for name in names:
        heading, *rest = sections[TITLES[name]]
        # A section carried over before already says so: say it once.
        while rest and rest[0] in ("", _CARRIED):
            rest = rest[1:]
        body += [heading, "", _CARRIED, "", *rest]
    return rows, body


def render(folder: Path | None = None, previous: str = "") -> str:
    """The whole document from the results in ``folder`` (default: results_dir()); sections
    of ``previous`` (the report as it was) are kept for benchmarks with no result there."""
    benches = _ordered(load("bench", folder))
    carried_rows, carried = _carried(previous, {str(b.get("name")) for b in benches})
    summary = _summary(benches)
    if carried_rows:
        summary = _summary_with(summary, carried_rows)
    lines = [
        "# Benchmarks",
        "",
        "Generated by `ordinaut bench report` from the JSON results of `ordinaut bench ...` and",
        "the fault suite; do not edit by hand: re-run the benchmarks (`ordinaut bench all`),",
        "then the report. Each figure names the command and the machine that produced it.",
        "",
        *summary,
    ]
    if not benches and not carried:
        lines += ["No benchmark results yet: run `ordinaut bench all`.", ""]
    for record in benches:
        lines += bench_section(record)
    lines += carried
    faults = load("faults", folder)
    if not faults and "Reliability" in (sections := _previous_sections(previous)):
        lines += sections["Reliability"]
    else:
        lines += reliability_section(faults)
    return "\n".join(lines).rstrip() + "\n"


def _summary_with(summary: list[str], rows: list[str]) -> list[str]:
    """The goals table with carried-over rows added (made if no goal was measured here)."""
    if not summary:
        header = _table(["bench", "goal", "measured", "verdict"], [])
        return ["## Goals at a glance", "", *header, *rows, ""]
    return [*summary[:-1], *rows, summary[-1]]


def write_report(path: Path = REPORT, folder: Path | None = None) -> Path:
    """Write ``render(folder)`` to ``path`` (BENCHMARKS.md in the current directory), keeping
    the sections of benchmarks with no result here from the report as it was."""
    previous = path.read_text() if path.exists() else ""
    path.write_text(render(folder, previous))
    return path
