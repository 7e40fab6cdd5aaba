"""The client's HTTP rules, against an httpx transport that answers as the API would: retries
only where repeating is safe, with one Idempotency-Key across them; problems as typed errors."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import httpx
import pytest

from ordinaut_client import (
    AsyncOrdinaut,
    Invalid,
    Ordinaut,
    OrdinautError,
    RateLimited,
    Retry,
    Unavailable,
    Unreachable,
)
from ordinaut_client.models import CreateAgent, TaskView

FAST = Retry(attempts=3, backoff=0.001)
TASK = {
    "id": "t1",
    "status": "active",
    "version": 3,
    "next_run_at": None,
    "created_by": "admin",
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
    "definition": {},
}


def answering(
    *statuses: int,
) -> tuple[list[httpx.Request], Callable[[httpx.Request], httpx.Response]]:
    """A transport answering ``statuses`` in turn (a problem for errors, TASK for 2xx)."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = statuses[min(len(seen), len(statuses)) - 1]
        if status < 400:
            return httpx.Response(status, json=TASK)
        problem = {
            "type": "urn:x",
            "title": "No",
            "status": status,
            "detail": "refused",
            "errors": [{"field": "schedule_expr", "reason": "not a cron"}],
        }
        headers = {"Retry-After": "0", "Content-Type": "application/problem+json"}
        return httpx.Response(status, content=json.dumps(problem), headers=headers)

    return seen, answer


def client(handler: Callable[[httpx.Request], httpx.Response]) -> AsyncOrdinaut:
    http = httpx.AsyncClient(base_url="http://api", transport=httpx.MockTransport(handler))
    return AsyncOrdinaut("http://api", retry=FAST, http=http)


async def test_reads_and_keyed_writes_are_retried_with_the_same_key() -> None:
    seen, answer = answering(503, 200)
    async with client(answer) as api:
        assert (await api.get_task("t1")).version == 3
    assert len(seen) == 2
    seen, answer = answering(429, 503, 201)
    async with client(answer) as api:
        task = await api.create_task({"title": "t"}, if_match=TaskView.model_validate(TASK))
    assert task.id == "t1"
    keys = {request.headers["Idempotency-Key"] for request in seen}
    assert len(seen) == 3
    assert len(keys) == 1
    assert seen[0].headers["If-Match"] == '"3"'


async def test_writes_without_a_key_are_not_retried_and_retries_are_bounded() -> None:
    seen, answer = answering(503, 201)
    async with client(answer) as api:
        with pytest.raises(Unavailable):
            await api.create_agent(CreateAgent(name="a", scopes=["tasks:read"]))
    assert len(seen) == 1
    seen, answer = answering(429)
    async with client(answer) as api:
        with pytest.raises(RateLimited) as limited:
            await api.get_task("t1")
    assert len(seen) == 3
    assert limited.value.retry_after == 0


def test_the_sync_client_reads_a_422_as_invalid_naming_the_field() -> None:
    seen, answer = answering(422)
    http = httpx.Client(base_url="http://api", transport=httpx.MockTransport(answer))
    with Ordinaut("http://api", retry=FAST, http=http) as api, pytest.raises(Invalid) as invalid:
        api.create_task({"title": "t", "schedule_kind": "cron", "schedule_expr": "nope"})
    assert invalid.value.fields == ["schedule_expr"]
    assert invalid.value.problem.status == 422
    assert len(seen) == 1  # a 422 is an answer, not a failure to retry


def _closed_port() -> int:
    with socket.socket() as probe:  # bound, then released: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_unreachable_api_is_an_ordinaut_error_after_the_retries() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    async with AsyncOrdinaut(url, retry=FAST) as api:
        with pytest.raises(Unreachable) as failed:
            await api.get_task("t1")
    assert isinstance(failed.value, OrdinautError)
    assert isinstance(failed.value.__cause__, httpx.ConnectError)
    assert failed.value.method == "GET"
    assert "unreachable" in str(failed.value)
    with Ordinaut(url, retry=FAST) as sync_api, pytest.raises(Unreachable):
        sync_api.get_task("t1")
