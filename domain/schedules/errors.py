"""The single error type raised for invalid schedules."""

from __future__ import annotations

from domain.errors import RuleViolation


class ScheduleError(RuleViolation):
    """A schedule field is invalid (``schedule_expr``, ``timezone``, ``dtstart`` ...)."""


def expr_error(reason: str) -> ScheduleError:
    """Shorthand for the most common case: the expression itself is wrong."""
    return ScheduleError("schedule_expr", reason)
