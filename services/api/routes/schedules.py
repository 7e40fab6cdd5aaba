"""Preview a schedule's next occurrences before creating a task with it."""

from __future__ import annotations

from litestar import post
from litestar.params import JSONBody

from services.api.auth import requires
from services.application import schedules as ops
from services.application.schedules import Occurrences, SchedulePreview

__all__ = ["Occurrences", "SchedulePreview", "preview_schedule"]


@post(
    "/schedules/preview",
    guards=[requires("tasks:read")],
    status_code=200,
    tags=["schedules"],
    summary="Next occurrences of a rule",
)
async def preview_schedule(data: JSONBody[SchedulePreview]) -> Occurrences:
    """The next ``count`` occurrences strictly after ``after`` (default now)."""
    return ops.preview_schedule(data)
