"""The one error the domain raises for input that breaks a rule."""

from __future__ import annotations


class RuleViolation(ValueError):
    """``field`` breaks a rule for ``reason``; ``status`` is how an API reports it.

    422 for refused input, 409 for a command the entity's state refuses, 403 for one the
    caller's scopes do not cover.
    """

    def __init__(self, field: str, reason: str, status: int = 422) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason, self.status = field, reason, status

    def __reduce__(self) -> tuple[type[RuleViolation], tuple[str, str, int]]:
        # Exception pickling replays ``args`` (the joined message), which would not fit __init__.
        return (type(self), (self.field, self.reason, self.status))
