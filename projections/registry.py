"""The read models Ordinaut maintains, in the order they are applied."""

from __future__ import annotations

from projections.agent import AgentProjection
from projections.base import ProjectionSet
from projections.due_work import DueWorkProjection
from projections.ownership import OwnershipProjection
from projections.rows import RuleProjection
from projections.rules import agent_limits, condition, runs, secret, tool
from projections.spend import SpendProjection
from projections.task import TaskProjection


def inline_projections() -> ProjectionSet:
    """Every projection that runs inside the append transaction."""
    return ProjectionSet(
        [
            TaskProjection(),
            RuleProjection("runs", runs.MODEL),
            DueWorkProjection(),
            AgentProjection(),
            RuleProjection("tool", tool.MODEL),
            # After runs: a step's cost is booked to the task and owner its run row names.
            SpendProjection(),
            RuleProjection("agent_limits", agent_limits.MODEL),
            RuleProjection("secret", secret.MODEL),
            RuleProjection("condition", condition.MODEL),
            OwnershipProjection(),
        ]
    )
