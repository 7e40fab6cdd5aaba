"""The async client: one method per route of the API, typed by the models in models.py.

The sync client (_sync.py) is generated from this file by scripts/unasync.py: edit this one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from ordinaut_client import models as m
from ordinaut_client._base import (
    Body,
    Retry,
    Version,
    headers,
    new_idempotency_key,
    operation,
    params,
    payload,
    segment,
)
from ordinaut_client.errors import Unreachable, error_for

T = TypeVar("T")
_HISTORY = TypeAdapter(dict[str, list[m.StoredEvent]])
_OCCURRENCES = TypeAdapter(dict[str, list[str]])
_DOCUMENT = TypeAdapter(dict[str, Any])


class AsyncOrdinaut:
    """``async with AsyncOrdinaut(url, token) as api: await api.get_task(...)``.

    Writes that accept an Idempotency-Key get a fresh one per call unless you pass your own
    (``auto_idempotency=False`` turns that off), so retrying them is safe.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        retry: Retry | None = None,
        auto_idempotency: bool = True,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = http or httpx.AsyncClient(base_url=base_url, timeout=timeout, headers=auth)
        self._retry = retry or Retry()
        self._auto_key = auto_idempotency

    async def __aenter__(self) -> AsyncOrdinaut:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- plumbing ------------------------------------------------------------------------------

    def _key(self, given: str | None) -> str | None:
        return given if given is not None or not self._auto_key else new_idempotency_key()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: Body | None = None,
        query: dict[str, Any] | None = None,
        extra: dict[str, str] | None = None,
    ) -> httpx.Response:
        content = payload(body)
        request = self._http.build_request(
            method,
            path,
            params=query,
            headers=extra,
            json=content if content is not None else None,
        )
        attempt = 1
        while True:
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                wait = self._retry.delay(request, attempt, exc)
                if wait is None:
                    raise Unreachable(request.method, str(request.url), exc) from exc
            else:
                if response.is_success:
                    return response
                wait = self._retry.delay(request, attempt, response)
                if wait is None:
                    raise error_for(response)
            await asyncio.sleep(wait)
            attempt += 1

    async def _get(self, model: type[T] | TypeAdapter[T], path: str, **query: Any) -> T:
        response = await self._send("GET", path, query=params(**query))
        return _decode(model, response)

    async def _write(
        self,
        model: type[T] | TypeAdapter[T] | None,
        method: str,
        path: str,
        body: Body | None = None,
        *,
        idempotency_key: str | None = None,
        if_match: Version | None = None,
        keyed: bool = True,
    ) -> T:
        key = self._key(idempotency_key) if keyed else idempotency_key
        response = await self._send(method, path, body=body, extra=headers(key, if_match))
        return _decode(model, response)

    # -- health and workers --------------------------------------------------------------------

    @operation("GET", "/health/live")
    async def live(self) -> dict[str, str]:
        return await self._get(TypeAdapter(dict[str, str]), "/health/live")

    @operation("GET", "/health/ready", response=m.Readiness)
    async def ready(self) -> m.Readiness:
        return await self._get(m.Readiness, "/health/ready")

    @operation("GET", "/health", response=m.HealthReport)
    async def health(self) -> m.HealthReport:
        return await self._get(m.HealthReport, "/health")

    @operation("GET", "/workers", response=m.WorkerList)
    async def list_workers(self) -> m.WorkerList:
        return await self._get(m.WorkerList, "/workers")

    # -- events --------------------------------------------------------------------------------

    @operation("GET", "/events", response=m.EventPage)
    async def list_events(
        self,
        *,
        after: str | None = None,
        before: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        stream: str | None = None,
        type: list[str] | None = None,
        actor: str | None = None,
        correlation_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> m.EventPage:
        return await self._get(
            m.EventPage,
            "/events",
            after=after,
            before=before,
            cursor=cursor,
            limit=limit,
            stream=stream,
            type=type,
            actor=actor,
            correlation_id=correlation_id,
            since=since,
            until=until,
        )

    async def iter_events(self, **filters: Any) -> AsyncIterator[m.StoredEvent]:
        """Every event the filters select (list_events' arguments), page after page."""
        page = await self.list_events(**filters)
        while True:
            for item in page.items:
                yield item
            if page.next is None:
                return
            page = await self.list_events(**(filters | {"cursor": page.next, "after": None}))

    @operation("POST", "/events", body=m.PublishEvent, response=m.Published)
    async def publish_event(
        self,
        topic: str,
        payload: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        occurred_at: str | None = None,
    ) -> m.Published:
        """Record an external event over HTTP (the ingest stream: ordinaut_client.ingest)."""
        body = m.PublishEvent(topic=topic, payload=payload, occurred_at=occurred_at)
        return await self._write(
            m.Published, "POST", "/events", body, idempotency_key=idempotency_key
        )

    # -- schedules and dry runs ----------------------------------------------------------------

    @operation("POST", "/schedules/preview", body=m.SchedulePreview, response=m.Occurrences)
    async def preview_schedule(self, body: m.SchedulePreview | Body) -> m.Occurrences:
        return await self._write(m.Occurrences, "POST", "/schedules/preview", body, keyed=False)

    @operation("POST", "/tasks/dry_run", body=m.DryRunBody, response=m.DryRun)
    async def dry_run(self, body: m.DryRunBody | Body) -> m.DryRun:
        return await self._write(m.DryRun, "POST", "/tasks/dry_run", body, keyed=False)

    @operation("POST", "/tasks/{task_id}/dry_run", body=m.DryRunOptions, response=m.DryRun)
    async def dry_run_task(
        self, task_id: str, body: m.DryRunOptions | Body | None = None
    ) -> m.DryRun:
        path = f"/tasks/{segment(task_id)}/dry_run"
        return await self._write(m.DryRun, "POST", path, body, keyed=False)

    # -- agents --------------------------------------------------------------------------------

    @operation("GET", "/agents", response=m.AgentList)
    async def list_agents(self) -> m.AgentList:
        return await self._get(m.AgentList, "/agents")

    @operation("POST", "/agents", body=m.CreateAgent, response=m.AgentView)
    async def create_agent(self, body: m.CreateAgent | Body) -> m.AgentView:
        return await self._write(m.AgentView, "POST", "/agents", body, keyed=False)

    @operation("GET", "/agents/{agent_id}", response=m.AgentView)
    async def get_agent(self, agent_id: str) -> m.AgentView:
        return await self._get(m.AgentView, f"/agents/{segment(agent_id)}")

    @operation("PATCH", "/agents/{agent_id}", body=m.ChangeAgent, response=m.AgentView)
    async def change_agent(self, agent_id: str, body: m.ChangeAgent | Body) -> m.AgentView:
        path = f"/agents/{segment(agent_id)}"
        return await self._write(m.AgentView, "PATCH", path, body, keyed=False)

    @operation("POST", "/agents/{agent_id}/tokens", body=m.IssueToken, response=m.IssuedToken)
    async def issue_token(
        self, agent_id: str, body: m.IssueToken | Body | None = None
    ) -> m.IssuedToken:
        path = f"/agents/{segment(agent_id)}/tokens"
        return await self._write(m.IssuedToken, "POST", path, body, keyed=False)

    @operation("DELETE", "/agents/{agent_id}/tokens/{token_id}")
    async def revoke_token(self, agent_id: str, token_id: str) -> None:
        path = f"/agents/{segment(agent_id)}/tokens/{segment(token_id)}"
        await self._write(None, "DELETE", path, keyed=False)

    @operation("GET", "/agents/{agent_id}/limits", response=m.LimitsView)
    async def get_limits(self, agent_id: str) -> m.LimitsView:
        return await self._get(m.LimitsView, f"/agents/{segment(agent_id)}/limits")

    @operation("PUT", "/agents/{agent_id}/limits", body=m.LimitsBody, response=m.LimitsView)
    async def put_limits(self, agent_id: str, body: m.LimitsBody | Body) -> m.LimitsView:
        path = f"/agents/{segment(agent_id)}/limits"
        return await self._write(m.LimitsView, "PUT", path, body, keyed=False)

    # -- tasks ---------------------------------------------------------------------------------

    @operation("GET", "/tasks", response=m.TaskPage)
    async def list_tasks(
        self,
        *,
        status: str | None = None,
        schedule_kind: str | None = None,
        created_by: str | None = None,
        key: str | None = None,
        q: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> m.TaskPage:
        return await self._get(
            m.TaskPage,
            "/tasks",
            status=status,
            schedule_kind=schedule_kind,
            created_by=created_by,
            key=key,
            q=q,
            limit=limit,
            cursor=cursor,
        )

    async def iter_tasks(self, **filters: Any) -> AsyncIterator[m.TaskView]:
        """Every task the filters select (list_tasks' arguments), page after page."""
        page = await self.list_tasks(**filters)
        while True:
            for item in page.items:
                yield item
            if page.next is None:
                return
            page = await self.list_tasks(**(filters | {"cursor": page.next}))

    @operation("POST", "/tasks", body=m.TaskBody, response=m.TaskView)
    async def create_task(
        self,
        body: m.TaskBody | Body,
        *,
        idempotency_key: str | None = None,
        if_match: Version | None = None,
    ) -> m.TaskView:
        """Create a task (201), or with a ``key`` update the task holding it (200)."""
        return await self._write(
            m.TaskView, "POST", "/tasks", body, idempotency_key=idempotency_key, if_match=if_match
        )

    @operation("GET", "/tasks/{task_id}", response=m.TaskView)
    async def get_task(self, task_id: str) -> m.TaskView:
        """One task; its ``version`` is what ``if_match`` expects."""
        return await self._get(m.TaskView, f"/tasks/{segment(task_id)}")

    @operation("PATCH", "/tasks/{task_id}", body=m.TaskPatch, response=m.TaskView)
    async def update_task(
        self,
        task_id: str,
        body: m.TaskPatch | Body,
        *,
        idempotency_key: str | None = None,
        if_match: Version | None = None,
    ) -> m.TaskView:
        path = f"/tasks/{segment(task_id)}"
        return await self._write(
            m.TaskView, "PATCH", path, body, idempotency_key=idempotency_key, if_match=if_match
        )

    @operation("DELETE", "/tasks/{task_id}")
    async def delete_task(
        self, task_id: str, *, idempotency_key: str | None = None, if_match: Version | None = None
    ) -> None:
        path = f"/tasks/{segment(task_id)}"
        await self._write(None, "DELETE", path, idempotency_key=idempotency_key, if_match=if_match)

    async def _task_command(
        self,
        task_id: str,
        command: str,
        body: Body | None,
        key: str | None,
        version: Version | None,
    ) -> m.TaskView:
        path = f"/tasks/{segment(task_id)}/{command}"
        return await self._write(
            m.TaskView, "POST", path, body, idempotency_key=key, if_match=version
        )

    @operation("POST", "/tasks/{task_id}/pause", response=m.TaskView)
    async def pause_task(
        self, task_id: str, *, idempotency_key: str | None = None, if_match: Version | None = None
    ) -> m.TaskView:
        return await self._task_command(task_id, "pause", None, idempotency_key, if_match)

    @operation("POST", "/tasks/{task_id}/resume", body=m.Resume, response=m.TaskView)
    async def resume_task(
        self,
        task_id: str,
        body: m.Resume | Body | None = None,
        *,
        idempotency_key: str | None = None,
        if_match: Version | None = None,
    ) -> m.TaskView:
        return await self._task_command(task_id, "resume", body, idempotency_key, if_match)

    @operation("POST", "/tasks/{task_id}/snooze", body=m.Snooze, response=m.TaskView)
    async def snooze_task(
        self,
        task_id: str,
        body: m.Snooze | Body,
        *,
        idempotency_key: str | None = None,
        if_match: Version | None = None,
    ) -> m.TaskView:
        return await self._task_command(task_id, "snooze", body, idempotency_key, if_match)

    @operation("POST", "/tasks/{task_id}/cancel", response=m.TaskView)
    async def cancel_task(
        self, task_id: str, *, idempotency_key: str | None = None, if_match: Version | None = None
    ) -> m.TaskView:
        return await self._task_command(task_id, "cancel", None, idempotency_key, if_match)

    @operation("POST", "/tasks/{task_id}/run_now", response=m.RunStarted)
    async def run_task_now(
        self, task_id: str, *, idempotency_key: str | None = None, if_match: Version | None = None
    ) -> m.RunStarted:
        path = f"/tasks/{segment(task_id)}/run_now"
        return await self._write(
            m.RunStarted, "POST", path, idempotency_key=idempotency_key, if_match=if_match
        )

    @operation("GET", "/tasks/{task_id}/occurrences")
    async def task_occurrences(
        self, task_id: str, count: int | None = None
    ) -> dict[str, list[str]]:
        path = f"/tasks/{segment(task_id)}/occurrences"
        return await self._get(_OCCURRENCES, path, count=count)

    @operation("GET", "/tasks/{task_id}/history")
    async def task_history(self, task_id: str) -> dict[str, list[m.StoredEvent]]:
        return await self._get(_HISTORY, f"/tasks/{segment(task_id)}/history")

    # -- runs ----------------------------------------------------------------------------------

    @operation("GET", "/runs", response=m.RunPage)
    async def list_runs(
        self,
        *,
        status: str | None = None,
        task_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> m.RunPage:
        return await self._get(
            m.RunPage, "/runs", status=status, task_id=task_id, limit=limit, cursor=cursor
        )

    async def iter_runs(self, **filters: Any) -> AsyncIterator[m.RunView]:
        """Every run the filters select (list_runs' arguments), newest first, page after page."""
        page = await self.list_runs(**filters)
        while True:
            for item in page.items:
                yield item
            if page.next is None:
                return
            page = await self.list_runs(**(filters | {"cursor": page.next}))

    @operation("GET", "/runs/{run_id}", response=m.RunView)
    async def get_run(self, run_id: str) -> m.RunView:
        return await self._get(m.RunView, f"/runs/{segment(run_id)}")

    @operation("GET", "/runs/{run_id}/history")
    async def run_history(self, run_id: str) -> dict[str, list[m.StoredEvent]]:
        return await self._get(_HISTORY, f"/runs/{segment(run_id)}/history")

    async def _run_command(
        self, run_id: str, command: str, body: Body | None, key: str | None
    ) -> m.RunView:
        path = f"/runs/{segment(run_id)}/{command}"
        return await self._write(m.RunView, "POST", path, body, idempotency_key=key)

    @operation("POST", "/runs/{run_id}/cancel", response=m.RunView)
    async def cancel_run(self, run_id: str, *, idempotency_key: str | None = None) -> m.RunView:
        return await self._run_command(run_id, "cancel", None, idempotency_key)

    @operation("POST", "/runs/{run_id}/retry", response=m.RunView)
    async def retry_run(self, run_id: str, *, idempotency_key: str | None = None) -> m.RunView:
        return await self._run_command(run_id, "retry", None, idempotency_key)

    @operation("POST", "/runs/{run_id}/approve", body=m.Decision, response=m.RunView)
    async def approve_run(
        self,
        run_id: str,
        body: m.Decision | Body | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> m.RunView:
        return await self._run_command(run_id, "approve", body, idempotency_key)

    @operation("POST", "/runs/{run_id}/reject", body=m.Decision, response=m.RunView)
    async def reject_run(
        self,
        run_id: str,
        body: m.Decision | Body | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> m.RunView:
        return await self._run_command(run_id, "reject", body, idempotency_key)

    @operation("POST", "/runs/{run_id}/rerun", body=m.Rerun, response=m.RunView)
    async def rerun_run(
        self, run_id: str, body: m.Rerun | Body, *, idempotency_key: str | None = None
    ) -> m.RunView:
        """A new run of this finished run's task from ``body.from_step``, keeping the outputs
        of the steps before it."""
        return await self._run_command(run_id, "rerun", body, idempotency_key)

    # -- tools and secrets ---------------------------------------------------------------------

    @operation("GET", "/tools", response=m.ToolList)
    async def list_tools(self) -> m.ToolList:
        return await self._get(m.ToolList, "/tools")

    @operation("POST", "/tools", body=m.ToolBody, response=m.ToolView)
    async def register_tool(self, body: m.ToolBody | Body) -> m.ToolView:
        return await self._write(m.ToolView, "POST", "/tools", body, keyed=False)

    @operation("GET", "/tools/{address}", response=m.ToolView)
    async def get_tool(self, address: str) -> m.ToolView:
        return await self._get(m.ToolView, f"/tools/{segment(address)}")

    @operation("DELETE", "/tools/{address}")
    async def remove_tool(self, address: str) -> None:
        await self._write(None, "DELETE", f"/tools/{segment(address)}", keyed=False)

    @operation("POST", "/tools/mcp_servers", body=m.McpServerBody, response=m.McpImport)
    async def import_mcp_server(self, body: m.McpServerBody | Body) -> m.McpImport:
        return await self._write(m.McpImport, "POST", "/tools/mcp_servers", body, keyed=False)

    @operation("GET", "/secrets", response=m.SecretList)
    async def list_secrets(self) -> m.SecretList:
        return await self._get(m.SecretList, "/secrets")

    @operation("POST", "/secrets", body=m.SecretBody, response=m.SecretView)
    async def store_secret(self, body: m.SecretBody | Body) -> m.SecretView:
        return await self._write(m.SecretView, "POST", "/secrets", body, keyed=False)

    @operation("DELETE", "/secrets/{name}")
    async def delete_secret(self, name: str) -> None:
        await self._write(None, "DELETE", f"/secrets/{segment(name)}", keyed=False)

    # -- documents -----------------------------------------------------------------------------

    @operation("GET", "/schema/tasks-file.json")
    async def tasks_file_schema(self) -> dict[str, Any]:
        """The JSON Schema of tasks files (`ordinaut apply -f`)."""
        return await self._get(_DOCUMENT, "/schema/tasks-file.json")

    @operation("GET", "/schema/asyncapi.json")
    async def asyncapi(self) -> dict[str, Any]:
        """The AsyncAPI document of the streams (`ordinaut:events`, `ordinaut:ingest`)."""
        return await self._get(_DOCUMENT, "/schema/asyncapi.json")

    async def openapi(self) -> dict[str, Any]:
        """The OpenAPI document the server serves: the contract this client is checked against."""
        return await self._get(_DOCUMENT, "/schema/openapi.json")


def _decode(model: type[T] | TypeAdapter[T] | None, response: httpx.Response) -> T:
    if model is None:
        return None  # type: ignore[return-value]
    if isinstance(model, TypeAdapter):
        return model.validate_json(response.content)
    assert issubclass(model, BaseModel)
    return model.model_validate_json(response.content)
