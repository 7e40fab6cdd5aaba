"""How many foreach iterations a pipeline will run, as far as the data at hand tells.

A foreach whose ``items_path`` reads only data known before it starts (params at task
creation; params, event, task, run and the steps run so far once the run is going) has a
known item count; one that reads ``item``, ``index`` or a step of an enclosing foreach body,
or has an ``if``, may differ from one execution to the next and counts as unknown (nothing).
The count is therefore a lower bound: if even it is over a limit, the task or run is refused
before doing any of the work, and the runner counts the real iterations as it goes for the
rest."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from domain.errors import RuleViolation
from domain.limits import WorkBudget, WorkLimits
from domain.pipeline import FOREACH
from domain.templates import select_items

_LOOP = re.compile(r"(?<![A-Za-z0-9_.\"'`])(item|index)\b")
_STEP = re.compile(r"(?<![A-Za-z0-9_.\"'`])steps\b(\.[A-Za-z_][A-Za-z0-9_-]*)?")


def planned_iterations(
    steps: Sequence[Mapping[str, Any]],
    data: Mapping[str, Any],
    now: datetime,
    budget: WorkBudget,
    path: str,
    shadowed: frozenset[str] = frozenset(),
) -> int:
    """Foreach body executions ``steps`` will surely run given ``data`` (every level);
    LimitExceeded for a known foreach over too many items. ``steps`` is a foreach body
    when called by the runner, so the step names it produces are not in ``data`` yet."""
    shadowed |= _produced(steps)
    total = 0
    for index, step in enumerate(steps):
        if step.get("uses") != FOREACH or "if" in step:
            continue
        where = f"{path}[{index}]"
        count = _known_count(step, data, now, f"{where}.with.items_path", shadowed)
        if count is None:
            continue
        budget.check_items(f"{where}.with.items_path", count)
        body = step["with"]["body"]
        total += count * (
            1 + planned_iterations(body, data, now, budget, f"{where}.with.body", shadowed)
        )
    return total


def _produced(steps: Sequence[Mapping[str, Any]]) -> frozenset[str]:
    return frozenset(str(s.get("save_as") or s.get("id")) for s in steps)


def check_payload_work(
    payload: Mapping[str, Any], now: datetime, limits: WorkLimits, path: str = "payload.pipeline"
) -> None:
    """LimitExceeded if the pipeline's foreach steps over its params already go past a limit
    (so the task is refused when it is created, not when it runs)."""
    budget = WorkBudget(limits)
    steps, params = payload.get("pipeline", []), payload.get("params", {})
    planned = planned_iterations(steps, {"params": params}, now, budget, path, _produced(steps))
    budget.check_planned(path, planned)


def _known_count(
    step: Mapping[str, Any],
    data: Mapping[str, Any],
    now: datetime,
    field: str,
    shadowed: frozenset[str],
) -> int | None:
    expression = step.get("with", {}).get("items_path")
    if not isinstance(expression, str) or _LOOP.search(expression):
        return None
    for match in _STEP.finditer(expression):
        if match.group(1) is None or match.group(1)[1:] in shadowed:
            return None  # all steps, or one a body (re)produces on each execution
    try:
        return len(select_items(expression, data, now=now, field=field))
    except RuleViolation:
        return None  # depends on data not known yet (or is broken): the run will tell
