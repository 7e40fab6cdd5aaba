"""`ordinaut up` driven only through the Python client (clients/python), and its subscriber kit.

One service: an agent and its tasks, a run parked for approval and approved, runs paged, an
event published over HTTP and onto the ingest stream, refusals read as typed exceptions; and
a FastStream subscriber (the kit) that receives the run's events in order in a consumer group,
is stopped while the run goes on, and resumes where it stopped: nothing missed or repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

from ordinaut_client import (
    AsyncOrdinaut,
    Conflict,
    IngestRefused,
    Invalid,
    NotFound,
    Ordinaut,
    ingest,
)
from ordinaut_client.events import AnyEvent, ApprovalRequested, Entry, RunSucceeded
from ordinaut_client.kit import OrdinautEvents
from ordinaut_client.models import CreateAgent, Decision, TaskBody, TaskPatch, TaskView
from services.runtime.runtime_file import read_runtime
from tests.client_contract import compare_models, compare_operations

SCOPES = ["tasks:read", "tasks:write", "runs:read", "runs:approve", "events:read", "events:publish"]
APPROVE_THEN_ECHO = [
    {"id": "ask", "uses": "orchestrator.request_approval", "with": {"message": "Ship it?"}},
    {"id": "send", "uses": "debug.echo", "with": {"decision": "${steps.ask.status}"}},
]


def echo_task(title: str, pipeline: list[dict[str, Any]]) -> TaskBody:
    return TaskBody(
        title=title,
        schedule_kind="cron",
        schedule_expr="0 0 1 1 *",
        payload={"pipeline": pipeline},
    )


async def eventually(check: Callable[[], Any], within: float = 60) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = check()
        found = await found if inspect.isawaitable(found) else found
        if found:
            return found
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


class Received:
    """What one subscriber session handed to its handler: (position, event) in arrival order."""

    def __init__(self, redis_url: str, stream: str) -> None:
        self.items: list[tuple[int, AnyEvent, str]] = []
        self.running = False
        self.events = OrdinautEvents(
            redis_url,
            group="e2e",
            consumer="e2e-1",
            stream=stream,
            start="0",
            polling_interval=100,
        )

        @self.events.on
        async def on_any(event: AnyEvent, entry: Entry) -> None:
            self.items.append((entry.position, event, entry.stream))

    async def start(self) -> None:
        await self.events.app.start()
        self.running = True

    async def stop(self) -> None:
        if self.running:
            self.running = False
            await self.events.app.stop()

    def of_run(self, run_id: str) -> list[tuple[int, AnyEvent]]:
        """The events of the run's own stream (its history), as received."""
        return [(p, e) for p, e, stream in self.items if stream == f"run-{run_id}"]


@pytest.fixture
async def subscribers() -> AsyncIterator[list[Received]]:
    """Subscriber sessions a test starts; any still running when it fails are stopped."""
    started: list[Received] = []
    yield started
    for session in started:
        await session.stop()


@pytest.mark.timeout(240)
async def test_the_python_client_drives_ordinaut_up(
    tmp_path: Path, start_service: Any, subscribers: list[Received]
) -> None:
    stream = f"test-{uuid.uuid4().hex}:events"
    service = start_service(tmp_path / ".ordinaut", env={"ORDINAUT_EVENTS_STREAM": stream})
    await service.wait_ready()
    runtime = read_runtime(service.data_dir)
    assert runtime is not None
    async with AsyncOrdinaut(service.base_url, service.admin_token) as admin:
        assert (await admin.ready()).model_dump()
        live = await admin.openapi()  # the document served right now
        assert compare_models(live) + compare_operations(live) == []
        agent = await admin.create_agent(CreateAgent(name="ops", scopes=SCOPES))
        token = await admin.issue_token(agent.id)
    first = Received(runtime.redis_url, stream)
    subscribers.append(first)
    await first.start()
    async with AsyncOrdinaut(service.base_url, token.token) as api:
        task = await api.create_task(echo_task("ship", APPROVE_THEN_ECHO))
        run_id = (await api.run_task_now(task.id)).run_id

        async def parked() -> bool:
            return (await api.get_run(run_id)).status == "awaiting_approval"

        await eventually(parked)
        await eventually(lambda: _has(first.of_run(run_id), ApprovalRequested))
        await first.stop()  # the subscriber is down while the run goes on

        approved = await api.approve_run(run_id, Decision(comment="yes"))
        assert approved.id == run_id

        async def done() -> bool:
            return (await api.get_run(run_id)).status == "succeeded"

        await eventually(done)
        second = Received(runtime.redis_url, stream)
        subscribers.append(second)
        await second.start()
        try:
            await eventually(lambda: _has(second.of_run(run_id), RunSucceeded))
        finally:
            await second.stop()
        history = (await api.run_history(run_id))["items"]
        received = first.of_run(run_id) + second.of_run(run_id)
        assert [p for p, _ in received] == [e.position for e in history]  # in order, once each
        assert [e.type for _, e in received] == [e.type for e in history]
        assert second.items[0][0] > first.items[-1][0]  # resumed after the last acknowledged

        await _page_runs(api, task)
        async with AsyncOrdinaut(service.base_url, service.admin_token) as admin:
            # an agent reads the events it caused; the admin reads the stream's too
            await _publish_both_ways(api, admin, runtime.redis_url)
        await _refusals(api, task)
    sync = await asyncio.to_thread(_read_with_the_sync_client, service.base_url, token.token, task)
    assert sync == task.id
    printed = await asyncio.to_thread(_run_the_client_readme, service.base_url, token.token)
    assert "['schedule_expr']" in printed
    assert service.stop() == 0


def _has(items: list[tuple[int, AnyEvent]], kind: type[Any]) -> bool:
    return any(isinstance(event, kind) for _, event in items)


async def _page_runs(api: AsyncOrdinaut, task: TaskView) -> None:
    quick = await api.create_task(echo_task("quick", [{"id": "a", "uses": "debug.echo"}]))
    started = {(await api.run_task_now(quick.id)).run_id for _ in range(3)}
    pages = await api.list_runs(task_id=quick.id, limit=2)
    assert len(pages.items) == 2
    assert pages.next is not None
    paged = [run.id async for run in api.iter_runs(task_id=quick.id, limit=1)]
    assert sorted(paged) == sorted(started)  # three pages, each run once
    assert {t.id async for t in api.iter_tasks(limit=1)} == {quick.id, task.id}


async def _publish_both_ways(api: AsyncOrdinaut, admin: AsyncOrdinaut, redis_url: str) -> None:
    published = await api.publish_event("orders.placed", {"via": "http"})
    assert published.model_dump()
    async with redis.Redis.from_url(redis_url) as client:
        await ingest.publish_event(client, "orders.placed", {"via": "stream"}, source="shop")
        with pytest.raises(IngestRefused) as refused:
            await ingest.publish_event(client, "orders placed", {"via": "stream"})
        assert refused.value.field == "topic"

    async def both() -> set[str]:
        found = {
            e.data["payload"]["via"]
            async for e in admin.iter_events(type=["event.received"], limit=1)
        }
        return found if found == {"http", "stream"} else set()

    await eventually(both)


async def _refusals(api: AsyncOrdinaut, task: TaskView) -> None:
    bad = echo_task("bad", []).model_copy(update={"schedule_expr": "not a cron"})
    with pytest.raises(Invalid) as invalid:
        await api.create_task(bad)
    assert "schedule_expr" in invalid.value.fields, invalid.value.errors
    with pytest.raises(NotFound):
        await api.get_task("no-such-task")
    current = await api.get_task(task.id)
    await api.update_task(task.id, TaskPatch(title="renamed"), if_match=current)
    with pytest.raises(Conflict):  # the version read before the rename is stale now
        await api.update_task(task.id, TaskPatch(title="again"), if_match=current)


def _run_the_client_readme(base_url: str, token: str) -> str:
    """The client README's example, verbatim but for the address: it runs, as shown."""
    readme = (Path(__file__).resolve().parents[2] / "clients" / "python" / "README.md").read_text()
    example = readme.split("```python\n", 1)[1].split("```", 1)[0]
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(example.replace("http://127.0.0.1:8080", base_url), {"token": token})
    return output.getvalue()


def _read_with_the_sync_client(base_url: str, token: str, task: TaskView) -> str:
    with Ordinaut(base_url, token) as api:
        return api.get_task(task.id).id
