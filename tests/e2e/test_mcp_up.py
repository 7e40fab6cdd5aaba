"""The MCP endpoint of a running `ordinaut up`: an agent's whole story through the SDK's client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.mcp_support import mcp_http, schedule_run_and_approve


@pytest.mark.timeout(180)
async def test_an_mcp_client_schedules_runs_and_approves_on_the_running_service(
    tmp_path: Path, start_service: Any, database_url: str, redis_url: str
) -> None:
    env = {"ORDINAUT_DATABASE_URL": database_url, "ORDINAUT_REDIS_URL": redis_url}
    service = start_service(tmp_path / "data", env)
    await service.wait_ready()
    async with service.client() as http, mcp_http(service.base_url, service.admin_token) as mcp:
        await schedule_run_and_approve(mcp, http)
    assert service.stop() == 0
    assert '"tool":"approve_run","actor":"admin","error":false' in service.output
