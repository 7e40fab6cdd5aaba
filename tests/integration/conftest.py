"""Fixtures most worker and API tests share: the API served for real, and a step tool."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.tools_servers.step_tool import StepTool, serving
from tests.workers import api_client


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API under uvicorn in a thread, as admin (modules needing another client define
    their own ``client``)."""
    async with api_client(database_url, redis_url) as test_client:
        yield test_client


@pytest.fixture
def tool() -> Iterator[tuple[StepTool, str]]:
    """An HTTP step tool on 127.0.0.1 and its base URL."""
    step_tool = StepTool()
    with serving(step_tool) as base_url:
        yield step_tool, base_url
