"""How many foreach iterations a pipeline will run, as far as the data at hand tells.

A foreach whose ``items_path`` reads only data known before it starts (params at task
creation; params, event, task and run once the run starts) has a known item count; one that
reads ``item``, ``index`` or ``steps``, or has an ``if``, may differ from one execution to
the next and counts as unknown (nothing). The count is therefore a lower bound: if even it
is over a limit, the task or run is refused before doing any of the work, and the runner
counts the real iterations as it goes for the rest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from domain.errors import RuleViolation
from domain.limits import WorkBudget, WorkLimits
from domain.pipeline import FOREACH
from domain.templates import select_items

_VARYING = re.compile(r"(?<![A-Za-z0-9_.\"'`])(item|index|steps)\b")


def planned_iterations(
    steps: Sequence[Mapping[str, Any]],
    data: Mapping[str, Any],
    now: datetime,
    budget: WorkBudget,
    path: str,
) -> int:
    """Foreach body executions ``steps`` will surely run given ``data`` (every level);
    LimitExceeded for a known foreach over too many items."""
    total = 0
    for index, step in enumerate(steps):
        if step.get("uses") != FOREACH or "if" in step:
            continue
        where = f"{path}[{index}]"
        count = _known_count(step, data, now, f"{where}.with.items_path")
        if count is None:
            continue
        budget.check_items(f"{where}.with.items_path", count)
        inner = planned_iterations(step["with"]["body"], data, now, budget, f"{where}.with.body")
        total += count * (1 + inner)
    return total


def check_payload_work(
    payload: Mapping[str, Any], now: datetime, limits: WorkLimits, path: str = "payload.pipeline"
) -> None:
    """LimitExceeded if the pipeline's foreach steps over its params already go past a limit
    (so the task is refused when it is created, not when it runs)."""
    budget = WorkBudget(limits)
    params = payload.get("params", {})
    planned = planned_iterations(payload.get("pipeline", []), {"params": params}, now, budget, path)
    budget.check_planned(path, planned)


def _known_count(
    step: Mapping[str, Any], data: Mapping[str, Any], now: datetime, field: str
) -> int | None:
    expression = step.get("with", {}).get("items_path")
    if not isinstance(expression, str) or _VARYING.search(expression):
        return None
    try:
        return len(select_items(expression, data, now=now, field=field))
    except RuleViolation:
        return None  # depends on data not known yet (or is broken): the run will tell
