"""The one error the domain raises for input that breaks a rule."""

from __future__ import annotations

from enum import Enum


class Refusal(Enum):
    """What kind of refusal a rule violation is (each interface reports the kinds its own way)."""

    INVALID = "invalid"  # input the rule refuses
    CONFLICT = "conflict"  # a command the entity's current state refuses
    FORBIDDEN = "forbidden"  # a command the caller's scopes do not cover


class RuleViolation(ValueError):
    """``field`` breaks a rule for ``reason``; ``kind`` says what kind of refusal it is."""

    def __init__(self, field: str, reason: str, kind: Refusal = Refusal.INVALID) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason, self.kind = field, reason, kind

    def __reduce__(self) -> tuple[type[RuleViolation], tuple[str, str, Refusal]]:
        # Exception pickling replays ``args`` (the joined message), which would not fit __init__.
        return (type(self), (self.field, self.reason, self.kind))
