"""`ordinaut up` with OTEL_EXPORTER_OTLP_ENDPOINT: one trace from the request to the tool call."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.tools_servers.http_tool_server import ToolServer, serve
from tests.ui_client import signed_in
from tests.webhook_receiver import WebhookReceiver
from tests.workers import eventually

SECRET = "s3cr3t-" + secrets.token_hex(8)
SERVER, CLIENT = 2, 3  # OTLP span kinds


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def one(spans: list[ReceivedSpan], name: str, **attributes: Any) -> ReceivedSpan:
    found = [
        s
        for s in spans
        if s.name == name and all(s.attributes.get(k) == v for k, v in attributes.items())
    ]
    assert len(found) == 1, (name, attributes, [(s.name, s.attributes) for s in spans])
    return found[0]


@pytest.mark.timeout(180)
async def test_a_published_event_is_traced_to_the_http_tool_call(
    tmp_path: Path, start_service: Any, database_url: str, redis_url: str
) -> None:
    receiver, tool = OtlpReceiver(), ToolServer()
    with serve(receiver) as otlp, serve(tool) as tools:
        env = {
            "ORDINAUT_DATABASE_URL": database_url,
            "ORDINAUT_REDIS_URL": redis_url,
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_SERVICE_NAME": "ordinaut-e2e",
        }
        service = start_service(tmp_path / "data", env)
        await service.wait_ready()
        async with service.client() as client:
            tool_body = {
                "address": "traced.call",
                "transport": "http",
                "endpoint": f"{tools}/echo",
                "input_schema": {"type": "object"},
                "output_schema": {"type": "object"},
                "timeout_seconds": 10,
            }
            await ok(await client.post("/tools", json=tool_body), 201)
            secret = {"name": "API_TOKEN", "value": SECRET, "allowed_tools": ["traced.*"]}
            await ok(await client.post("/secrets", json=secret), 201)
            pipeline = [
                {"id": "first", "uses": "debug.echo", "with": {"n": "${event.payload.n}"}},
                {
                    "id": "call",
                    "uses": "traced.call",
                    "with": {"token": "${secrets.API_TOKEN}", "n": "${steps.first.n}"},
                },
            ]
            task = {
                "title": "on order",
                "schedule_kind": "event",
                "schedule_expr": "order.*",
                "payload": {"pipeline": pipeline},
            }
            task_id = (await ok(await client.post("/tasks", json=task), 201))["id"]
            trace_id, caller = secrets.token_hex(16), secrets.token_hex(8)
            headers = {"traceparent": f"00-{trace_id}-{caller}-01"}
            event = {"topic": "order.placed", "payload": {"n": 7}}
            await ok(await client.post("/events", json=event, headers=headers), 202)

            async def succeeded() -> list[dict[str, Any]]:
                runs = (await client.get("/runs", params={"task_id": task_id})).json()
                return [r for r in runs["items"] if r["status"] == "succeeded"]

            (run,) = await eventually(succeeded, within=60)
            async with signed_in(client, service.admin_token) as ui:
                page = await ui.get(f"/ui/runs/{run['id']}")

            async def complete() -> list[ReceivedSpan]:
                spans = receiver.trace(trace_id)
                names = [s.name for s in spans]
                return (
                    spans if names.count("ordinaut.tool") == 2 and "ordinaut.run" in names else []
                )

            spans = await eventually(complete, within=30)
        assert service.stop() == 0

    # the request continues the caller's trace; its command queued the run
    request = one(spans, "POST /events")
    assert (request.parent_id, request.kind) == (caller, SERVER)
    command = one(spans, "ordinaut.commands")
    assert command.parent_id == request.span_id
    run_span = one(spans, "ordinaut.run", **{"ordinaut.run.id": run["id"]})
    assert run_span.parent_id == command.span_id
    steps = {s.attributes["ordinaut.step.id"]: s for s in spans if s.name == "ordinaut.step"}
    assert set(steps) == {"first", "call"}
    assert {s.parent_id for s in steps.values()} == {run_span.span_id}
    call = one(spans, "ordinaut.tool", **{"ordinaut.tool.address": "traced.call"})
    assert (call.parent_id, call.kind) == (steps["call"].span_id, CLIENT)
    # the tool was called with the trace context of its span
    (received,) = [r for r in tool.received if r.path == "/echo"]
    assert received.headers["traceparent"] == f"00-{trace_id}-{call.span_id}-01"
    # the run page shows the trace id; no secret was exported, in any span of any trace
    assert f'<code data-testid="run-trace">{trace_id}</code>' in page.text
    assert not any(SECRET.encode() in body for body in receiver.bodies)
    assert {s.service for s in spans} == {"ordinaut-e2e"}


@pytest.mark.timeout(180)
async def test_a_runs_end_webhook_continues_the_trace_of_the_request_that_ran_it(
    tmp_path: Path, start_service: Any, database_url: str, redis_url: str
) -> None:
    receiver, hooks_app = OtlpReceiver(), WebhookReceiver()
    with serve(receiver) as otlp, serve(hooks_app, lifespan="off") as hooks:
        env = {
            "ORDINAUT_DATABASE_URL": database_url,
            "ORDINAUT_REDIS_URL": redis_url,
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        service = start_service(tmp_path / "data", env)
        await service.wait_ready()
        async with service.client() as admin:
            body = {
                "name": "owner",
                "scopes": ["tasks:write", "tasks:read", "runs:read"],
                "webhook_url": f"{hooks}/ok",
            }
            agent = await ok(await admin.post("/agents", json=body), 201)
            token = await ok(await admin.post(f"/agents/{agent['id']}/tokens", json={}), 201)
        hooks_app.secrets[agent["id"]] = agent["webhook_secret"]
        trace_id = secrets.token_hex(16)
        headers = {
            "Authorization": f"Bearer {token['token']}",
            "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
        }
        async with httpx.AsyncClient(base_url=service.base_url, headers=headers) as api:
            task = {
                "title": "t",
                "schedule_kind": "cron",
                "schedule_expr": "0 0 1 1 *",
                "payload": {"pipeline": [{"id": "hello", "uses": "debug.echo"}]},
            }
            created = await ok(await api.post("/tasks", json=task), 201)
            await ok(await api.post(f"/tasks/{created['id']}/run_now"), 202)

            async def delivered() -> list[ReceivedSpan]:
                spans = receiver.trace(trace_id)
                sent = [s for s in spans if s.name == "ordinaut.webhook"]
                return sent if hooks_app.received else []

            (webhook,) = await eventually(delivered, within=60)
        assert service.stop() == 0

    (delivery,) = hooks_app.received
    assert delivery.body["type"] == "run.succeeded"
    assert delivery.headers["traceparent"].startswith(f"00-{trace_id}-{webhook.span_id}-")
    run_span = one(receiver.trace(trace_id), "ordinaut.run")
    assert webhook.parent_id == run_span.span_id  # run.succeeded was recorded in the run's span
