"""An apply's report as text: one line per tool and task, a diff for each update."""

from __future__ import annotations

import json

from services.declarative.apply import ApplyReport

_MARKS = {
    "create": "+",
    "register": "+",
    "update": "~",
    "replace": "~",
    "unchanged": "=",
    "prune": "-",
}
_VALUE_MAX = 120


def describe(report: ApplyReport) -> list[str]:
    """What happened (or would happen, in a dry run), then a one-line summary."""
    lines = [f"{report.name} (source {report.source!r}):"]
    for tool in report.tools:
        lines.append(f"  {_MARKS[tool.action]} tool {tool.address}: {tool.action}")
    for change in report.tasks:
        note = f" (replaces finished task {change.replaced})" if change.replaced else ""
        lines.append(f"  {_MARKS[change.action]} {change.key}: {change.action}{note}")
        for name, (before, after) in sorted(change.changed.items()):
            lines.append(f"      {name}: {_show(before)} -> {_show(after)}")
    counts = ", ".join(
        f"{report.count(action)} {word}"
        for action, word in (
            ("create", "created"),
            ("update", "updated"),
            ("unchanged", "unchanged"),
            ("prune", "pruned"),
        )
    )
    suffix = " (dry run: nothing was written)" if report.dry_run else ""
    lines.append(f"{counts}{suffix}")
    return lines


def _show(value: object) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= _VALUE_MAX else f"{text[: _VALUE_MAX - 3]}..."
