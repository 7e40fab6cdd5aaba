"""Budgets: what a step costs, and whether a daily budget lets the next call go ahead."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from domain.errors import RuleViolation

COST_FIELD = "_cost"  # a tool may report what a call cost in its output object
COST_MAX = 1e12


def check_amount(value: float | None, field: str) -> float | None:
    """A cost or budget: None, or a finite number from 0 to 10^12."""
    if value is None:
        return None
    if not math.isfinite(value) or not 0 <= value <= COST_MAX:
        raise RuleViolation(field, "must be a number from 0 to 10^12")
    return float(value)


def step_cost(cost_per_call: float | None, output: Any) -> float:
    """The cost of one call: the ``_cost`` number the output reports, else the declared cost."""
    if isinstance(output, dict):
        reported = output.get(COST_FIELD)
        if isinstance(reported, bool) or not isinstance(reported, int | float):
            return cost_per_call or 0.0
        if math.isfinite(reported) and reported >= 0:
            return float(reported)
    return cost_per_call or 0.0


@dataclass(frozen=True)
class Budget:
    """A daily budget and what was spent of it today."""

    scope: Literal["task", "agent"]
    limit: float
    spent: float


@dataclass(frozen=True)
class Overrun:
    """The budget a call would break, and what it would cost."""

    budget: Budget
    cost: float


def check_call(budgets: list[Budget], expected_cost: float, may_cost: bool) -> Overrun | None:
    """The first budget a call would exceed, if any.

    A call with a declared cost is refused if it would take spending past the budget. A call
    that may cost without saying how much ahead (a registered tool that can report ``_cost``)
    is refused once the budget is used up. Builtins cost nothing and are never refused.
    """
    if not may_cost:
        return None
    for budget in budgets:
        over = budget.spent + expected_cost > budget.limit
        spent_up = expected_cost == 0 and budget.spent >= budget.limit
        if over or spent_up:
            return Overrun(budget, expected_cost)
    return None
