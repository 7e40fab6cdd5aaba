"""The read models Ordinaut maintains, in the order they are applied."""

from __future__ import annotations

from projections.agent import AgentProjection
from projections.agent_limits import AgentLimitsProjection
from projections.base import ProjectionSet
from projections.condition import ConditionProjection
from projections.due_work import DueWorkProjection
from projections.ownership import OwnershipProjection
from projections.runs import RunsProjection
from projections.secret import SecretProjection
from projections.spend import SpendProjection
from projections.task import TaskProjection
from projections.tool import ToolProjection


def inline_projections() -> ProjectionSet:
    """Every projection that runs inside the append transaction."""
    return ProjectionSet(
        [
            TaskProjection(),
            RunsProjection(),
            DueWorkProjection(),
            AgentProjection(),
            ToolProjection(),
            # After runs: a step's cost is booked to the task and owner its run row names.
            SpendProjection(),
            AgentLimitsProjection(),
            SecretProjection(),
            ConditionProjection(),
            OwnershipProjection(),
        ]
    )
