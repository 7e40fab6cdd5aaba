"""The read models Ordinaut maintains, in the order they are applied."""

from __future__ import annotations

from projections.base import ProjectionSet
from projections.due_work import DueWorkProjection
from projections.task import TaskProjection


def inline_projections() -> ProjectionSet:
    """Every projection that runs inside the append transaction."""
    return ProjectionSet([TaskProjection(), DueWorkProjection()])
