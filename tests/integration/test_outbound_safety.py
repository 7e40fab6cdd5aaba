"""http tools reach public addresses and the allow-list only; the rest is refused before
any connection is made (a refused name is never even connected to)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from domain.outbound import parse_allow_list
from services.tools.errors import ToolCallError
from services.tools.http import HttpTools
from tests.tools_servers.step_tool import StepTool, serving
from tests.workers import api_client, create_task, run_now, run_to_end, running_workers


@pytest.fixture
def tool_url() -> Iterator[str]:
    with serving(StepTool()) as base_url:
        yield base_url


@pytest.fixture
async def loopback_only() -> AsyncIterator[HttpTools]:
    tools = HttpTools()
    yield tools
    await tools.aclose()


async def _refusal(tools: HttpTools, url: str) -> ToolCallError:
    with pytest.raises(ToolCallError) as caught:
        await tools.request({"url": url}, timeout_seconds=5)
    assert not caught.value.retryable
    return caught.value


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.1/", "private network"),
        ("http://[::ffff:192.168.0.1]:8080/", "private network"),
        ("http://[fd00:ec2::254]/", "private network"),
        ("http://0.0.0.0:6379/", "not a public unicast address"),
    ],
)
async def test_http_request_refuses_metadata_and_private_addresses(
    loopback_only: HttpTools, url: str, reason: str
) -> None:
    error = await _refusal(loopback_only, url)
    assert "refused to connect" in error.message
    assert reason in error.message


async def test_loopback_is_allowed_by_default_and_refused_without_the_allow_list(
    loopback_only: HttpTools, tool_url: str
) -> None:
    answer = await loopback_only.request({"url": f"{tool_url}/ok"}, timeout_seconds=5)
    assert answer["status"] in (200, 405)
    strict = HttpTools(allowed=())
    try:
        by_name = await _refusal(strict, tool_url.replace("127.0.0.1", "localhost") + "/ok")
        assert "loopback" in by_name.message
        with pytest.raises(ToolCallError, match="loopback"):
            await strict.post(f"{tool_url}/ok", {}, idempotency_key="k", timeout_seconds=5)
    finally:
        await strict.aclose()


async def test_the_allow_list_opens_a_private_network(tool_url: str) -> None:
    tools = HttpTools(allowed=parse_allow_list("127.0.0.0/8"))
    try:
        answer = await tools.post(
            f"{tool_url}/ok", {"a": 1}, idempotency_key="k", timeout_seconds=5
        )
        assert answer["input"] == {"a": 1}
    finally:
        await tools.aclose()


async def test_a_pipeline_step_to_the_metadata_address_fails_without_retrying(
    database_url: str, redis_url: str
) -> None:
    async with api_client(database_url, redis_url) as client:
        task = await create_task(
            client,
            [
                {
                    "id": "steal",
                    "uses": "http.request",
                    "with": {"url": "http://169.254.169.254/latest/meta-data/iam/"},
                }
            ],
        )
        async with running_workers(database_url, redis_url):
            run = await run_to_end(client, await run_now(client, task["id"]))
    assert run["status"] == "dead", run
    assert run["attempt"] == 1  # not retryable: another attempt would be refused the same way
    assert "link-local" in run["steps"][0]["error"]
