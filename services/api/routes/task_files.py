"""The JSON Schema of tasks files (`ordinaut apply -f`), for editors and CI (no authentication)."""

from __future__ import annotations

from typing import Any

from litestar import Response, get

from services.declarative.file_format import tasks_file_schema


@get(
    "/schema/tasks-file.json",
    tags=["tasks"],
    summary="JSON Schema of a tasks file",
    include_in_schema=True,
    media_type="application/schema+json",
)
async def tasks_file_json_schema() -> Response[dict[str, Any]]:
    """The Draft 2020-12 schema every file given to `ordinaut apply` must satisfy."""
    return Response(tasks_file_schema(), media_type="application/schema+json")


ROUTES = [tasks_file_json_schema]
