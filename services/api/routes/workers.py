"""The workers that reported in recently (admin): a thin HTTP adapter over
services/application/workers."""

from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency

from services.api.auth import requires
from services.application import workers as ops
from services.application.context import Backend
from services.application.principal import ADMIN_SCOPE
from services.application.workers import WorkerList


@get("/workers", guards=[requires(ADMIN_SCOPE)], tags=["operations"], summary="List workers")
async def list_workers(backend: NamedDependency[Backend]) -> WorkerList:
    """Every worker that reported in the last day; ``alive`` if within the last 30 s."""
    return await ops.list_workers(backend)
