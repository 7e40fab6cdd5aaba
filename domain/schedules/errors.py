"""The single error type raised for invalid schedules."""

from __future__ import annotations


class ScheduleError(ValueError):
    """A schedule field is invalid; ``field`` names it and ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[type[ScheduleError], tuple[str, str]]:
        # Exception pickling replays ``args`` (the joined message), which would not fit __init__.
        return (type(self), (self.field, self.reason))


def expr_error(reason: str) -> ScheduleError:
    """Shorthand for the most common case: the expression itself is wrong."""
    return ScheduleError("schedule_expr", reason)
