"""Bounds on the work one request or one run may cost, and the budget a run spends them from.

The defaults live here; settings (ORDINAUT_FOREACH_MAX_ITEMS and the others named in
``SETTINGS``) override them. A bound that is exceeded raises LimitExceeded naming its
setting: the API refuses the input, a worker fails the step (retrying cannot help).
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import RuleViolation

MIB = 1_048_576


@dataclass(frozen=True, slots=True)
class WorkLimits:
    """How much one run (or dry run) may do.

    foreach_max_items: items one `pipeline.foreach` may loop over.
    run_max_iterations: foreach body executions in one run, every level counted.
    foreach_max_depth: how deep `pipeline.foreach` steps may nest.
    step_input_max_bytes: one step's rendered input, as JSON.
    run_max_rendered_bytes: every rendered step input of one run together, as JSON.
    """

    foreach_max_items: int = 1_000
    run_max_iterations: int = 10_000
    foreach_max_depth: int = 3
    step_input_max_bytes: int = MIB
    run_max_rendered_bytes: int = 8 * MIB


# field -> (environment variable, lowest accepted, highest accepted)
SETTINGS: dict[str, tuple[str, int, int]] = {
    "foreach_max_items": ("ORDINAUT_FOREACH_MAX_ITEMS", 1, 10_000_000),
    "run_max_iterations": ("ORDINAUT_RUN_MAX_ITERATIONS", 1, 100_000_000),
    "foreach_max_depth": ("ORDINAUT_FOREACH_MAX_DEPTH", 1, 10),
    "step_input_max_bytes": ("ORDINAUT_STEP_INPUT_MAX_BYTES", 1_024, 1_024 * MIB),
    "run_max_rendered_bytes": ("ORDINAUT_RUN_MAX_RENDERED_BYTES", 1_024, 16 * 1_024 * MIB),
}


class LimitExceeded(RuleViolation):
    """A bound of WorkLimits is exceeded; the reason names its setting."""


def exceeded(field: str, what: str, limit: str, value: int) -> LimitExceeded:
    """The error for ``what`` going past the bound named ``limit`` (a WorkLimits field)."""
    return LimitExceeded(field, f"{what} exceeds the limit of {value} ({SETTINGS[limit][0]})")


@dataclass
class WorkBudget:
    """What one run has spent so far: foreach iterations and rendered input bytes."""

    limits: WorkLimits
    iterations: int = 0
    rendered_bytes: int = 0

    def check_items(self, field: str, count: int) -> None:
        """LimitExceeded if one foreach would loop over ``count`` items."""
        if count > self.limits.foreach_max_items:
            raise exceeded(
                field, f"{count} items", "foreach_max_items", self.limits.foreach_max_items
            )

    def check_planned(self, field: str, planned: int) -> None:
        """LimitExceeded if ``planned`` more iterations would go past the run's bound."""
        total = self.iterations + planned
        if total > self.limits.run_max_iterations:
            raise exceeded(
                field,
                f"{total} foreach iterations in the run",
                "run_max_iterations",
                self.limits.run_max_iterations,
            )

    def iterate(self, field: str) -> None:
        """Count one foreach body execution."""
        self.check_planned(field, 1)
        self.iterations += 1

    def spend_rendered(self, field: str, size: int) -> None:
        """Count one step's rendered input of ``size`` bytes against both size bounds."""
        if size > self.limits.step_input_max_bytes:
            raise exceeded(
                field,
                f"the rendered input ({size} bytes)",
                "step_input_max_bytes",
                self.limits.step_input_max_bytes,
            )
        total = self.rendered_bytes + size
        if total > self.limits.run_max_rendered_bytes:
            limit = self.limits.run_max_rendered_bytes
            what = f"the run's rendered inputs ({total} bytes)"
            raise exceeded(field, what, "run_max_rendered_bytes", limit)
        self.rendered_bytes = total
