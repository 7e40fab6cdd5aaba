"""A builtin tool's input written without templates is checked against its schema when the
task is created, updated or dry-run, not first when it runs (issue 18, finding 10)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.workers import AUTH, api_client, create_task


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(database_url, redis_url) as test_client:
        yield test_client


def body(options: dict[str, Any]) -> dict[str, Any]:
    step = {"id": "call", "uses": "http.request", "with": options}
    return {
        "title": "t",
        "schedule_kind": "cron",
        "schedule_expr": "0 0 1 1 *",
        "payload": {"pipeline": [step], "params": {"method": "GET"}},
    }


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"method": "SET", "url": "https://example.com/"}, "payload.pipeline[0].with.method"),
        ({"url": "ftp://example.com/"}, "payload.pipeline[0].with.url"),
        ({"method": "GET"}, "payload.pipeline[0].with"),  # url is required
        ({"url": "https://example.com/", "verb": "GET"}, "payload.pipeline[0].with"),
        ({"url": "${params.u}", "timeout_seconds": -1}, "payload.pipeline[0].with.timeout_seconds"),
    ],
)
async def test_a_literal_input_that_breaks_the_schema_is_refused_naming_the_field(
    client: httpx.AsyncClient, options: dict[str, Any], field: str
) -> None:
    created = await client.post("/tasks", json=body(options), headers=AUTH)
    dry_run = await client.post("/tasks/dry_run", json={"task": body(options)}, headers=AUTH)
    for response in (created, dry_run):
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in response.text


async def test_an_update_to_a_bad_literal_input_is_refused(client: httpx.AsyncClient) -> None:
    task = await create_task(client, body({"url": "https://example.com/"})["payload"]["pipeline"])
    bad = body({"method": "SET", "url": "https://example.com/"})
    response = await client.patch(
        f"/tasks/{task['id']}", json={"payload": bad["payload"]}, headers=AUTH
    )
    assert response.status_code == 422, response.text
    assert "payload.pipeline[0].with.method" in response.text


async def test_templated_values_wait_until_they_are_rendered(client: httpx.AsyncClient) -> None:
    options = {"method": "${params.method}", "url": "${params.u}", "headers": {"x": "${run.id}"}}
    response = await client.post("/tasks", json=body(options), headers=AUTH)
    assert response.status_code == 201, response.text
