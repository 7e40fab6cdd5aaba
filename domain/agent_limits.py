"""An agent's limits as the admin sets them: a daily budget, quiet hours, API rate limits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from domain.budgets import check_amount
from domain.errors import RuleViolation
from domain.events import AgentLimitsSet, QuietWindow
from domain.quiet_hours import check_windows
from domain.rate_limits import ROUTE_GROUPS, parse_rate_limit
from domain.schedules import validate_timezone


def set_limits(
    agent_id: str,
    *,
    budget_per_day: float | None,
    quiet_hours: Sequence[QuietWindow],
    timezone: str,
    rate_limits: Mapping[str, str],
) -> AgentLimitsSet:
    """The event replacing an agent's limits, once each one is valid (RuleViolation if not)."""
    check_windows(quiet_hours, "quiet_hours")
    validate_timezone(timezone)  # a RuleViolation naming ``timezone``
    for group, text in rate_limits.items():
        if group not in ROUTE_GROUPS:
            raise RuleViolation(f"rate_limits.{group}", f"must be one of {', '.join(ROUTE_GROUPS)}")
        parse_rate_limit(text, f"rate_limits.{group}")
    return AgentLimitsSet(
        agent_id=agent_id,
        budget_per_day=check_amount(budget_per_day, "budget_per_day"),
        quiet_hours=tuple(quiet_hours),
        timezone=timezone,
        rate_limits=dict(sorted(rate_limits.items())),
    )
