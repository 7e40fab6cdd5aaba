"""Every error the API gives is problem+json naming the problem, and writes nothing."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar import get
from litestar.testing import AsyncTestClient
from structlog.testing import capture_logs

from services.api.app import ApiConfig, create_app
from services.runtime.admin_token import token_hash

ADMIN = "admin-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@get("/test/raise")
async def raising_route() -> None:
    raise RuntimeError("database password is hunter2")


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(
        ApiConfig(database_url, redis_url, token_hash(ADMIN)), extra_routes=[raising_route]
    )
    async with AsyncTestClient(app) as test_client:
        yield test_client


async def event_count(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM events"))


BAD_BODIES = [
    pytest.param(b"{not json", 400, None, id="malformed-json"),
    pytest.param(b'{"topic": "a", "payload": [1]}', 422, "payload", id="wrong-type"),
    pytest.param(b'{"topic": 5, "payload": {}}', 422, "topic", id="wrong-type-topic"),
    pytest.param(b'{"topic": "a", "payload": {}, "topc": 1}', 422, "topc", id="unknown-field"),
    pytest.param(b'{"payload": {}}', 422, "topic", id="missing-field"),
    pytest.param(b'{"topic": "has space", "payload": {}}', 422, "topic", id="bad-pattern"),
    pytest.param(b"[]", 422, None, id="array-body"),
    pytest.param(
        b'{"topic": "a", "payload": {"x": ' + b"[" * 5000 + b"]" * 5000 + b"}}",
        400,
        None,
        id="deeply-nested",
    ),
    pytest.param(
        b'{"topic": "a", "payload": {"x": "nul\\u0000"}}', 422, "payload.x", id="nul-char"
    ),
    pytest.param(
        b'{"topic": "a", "payload": {}, "occurred_at": "2026-01-01T00:00:00"}',
        422,
        "occurred_at",
        id="instant-without-offset",
    ),
    pytest.param(
        b'{"topic": "a", "payload": {"x": "' + b"a" * (2 * 1024 * 1024) + b'"}}',
        413,
        None,
        id="oversize",
    ),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD_BODIES)
async def test_bad_bodies_get_problem_json_and_write_nothing(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, body: bytes, status: int, field: str | None
) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    response = await client.post("/events", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert problem["detail"]
    if field is not None:
        assert problem["errors"][0]["field"] == field
        assert problem["detail"].startswith(f"{field}: ")
    assert await event_count(pool) == 0


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": "Bearer wrong-token"}, id="wrong"),
        pytest.param({"Authorization": f"Basic {ADMIN}"}, id="wrong-scheme"),
        pytest.param({"Authorization": "Bearer "}, id="empty"),
    ],
)
@pytest.mark.parametrize(("method", "path"), [("GET", "/events"), ("POST", "/events")])
async def test_a_missing_or_wrong_token_is_401(
    client: AsyncTestClient[Any],
    pool: asyncpg.Pool,
    headers: dict[str, str],
    method: str,
    path: str,
) -> None:
    body = {"topic": "a", "payload": {}}
    response = await client.request(method, path, headers=headers, json=body)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert await event_count(pool) == 0


async def test_an_unexpected_exception_is_a_500_without_internals_and_is_logged(
    client: AsyncTestClient[Any],
) -> None:
    with capture_logs() as logs:
        response = await client.get("/test/raise", headers={"X-Correlation-ID": "trace-42"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert response.json()["correlation_id"] == "trace-42"
    assert response.headers["x-correlation-id"] == "trace-42"
    errors = [entry for entry in logs if entry["log_level"] == "error"]
    assert errors
    assert errors[0]["correlation_id"] == "trace-42"
    assert errors[0]["exc_info"]


async def test_unknown_routes_and_methods_are_problems_with_a_correlation_id(
    client: AsyncTestClient[Any],
) -> None:
    missing = await client.get("/no/such/route", headers=AUTH)
    wrong_method = await client.delete("/events", headers=AUTH)
    assert (missing.status_code, wrong_method.status_code) == (404, 405)
    assert "GET" in wrong_method.headers["allow"]
    for response in (missing, wrong_method):
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["x-correlation-id"]
        assert response.json()["correlation_id"] == response.headers["x-correlation-id"]
    yours = await client.get("/no/such/route", headers={**AUTH, "X-Correlation-ID": "trace-7"})
    assert yours.headers["x-correlation-id"] == "trace-7"
    assert yours.json()["correlation_id"] == "trace-7"


@pytest.mark.parametrize(
    ("query", "field"),
    [("after=-1", "after"), ("limit=0", "limit"), ("limit=5000", "limit"), ("after=abc", "after")],
)
async def test_bad_query_parameters_name_the_parameter(
    client: AsyncTestClient[Any], query: str, field: str
) -> None:
    response = await client.get(f"/events?{query}", headers=AUTH)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


async def test_published_events_read_back_in_order_with_the_actor(
    client: AsyncTestClient[Any],
) -> None:
    for n in range(3):
        response = await client.post(
            "/events", headers=AUTH, json={"topic": "sensor.reading", "payload": {"n": n}}
        )
        assert response.status_code == 202, response.text
    page = (await client.get("/events?after=0&limit=2", headers=AUTH)).json()
    assert [item["data"]["payload"]["n"] for item in page["items"]] == [0, 1]
    assert page["next"] == page["items"][-1]["cursor"]
    rest = (await client.get(f"/events?cursor={page['next']}", headers=AUTH)).json()
    assert [item["data"]["payload"]["n"] for item in rest["items"]] == [2]
    assert rest["next"] is None
    assert {item["meta"]["actor"] for item in page["items"] + rest["items"]} == {"admin"}


async def test_a_repeated_idempotency_key_returns_the_first_answer(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    body = {"topic": "order.placed", "payload": {"id": 7}}
    headers = {**AUTH, "Idempotency-Key": "order-7"}
    first = await client.post("/events", headers=headers, json=body)
    again = await client.post("/events", headers=headers, json=body)
    assert first.json() == again.json()
    assert await event_count(pool) == 1
    other = await client.post("/events", headers=headers, json={**body, "payload": {"id": 8}})
    assert other.status_code == 422
    assert await event_count(pool) == 1


@pytest.mark.parametrize(
    ("key", "in_body"),
    [
        pytest.param("é".encode(), False, id="utf-8-header"),
        pytest.param("é".encode("latin-1"), False, id="latin-1-header"),
        pytest.param("café", True, id="non-ascii-body"),
        pytest.param("a\u0000b", True, id="nul-body"),
        pytest.param("k" * 201, True, id="too-long-body"),
    ],
)
async def test_an_idempotency_key_is_printable_ascii_in_a_header_or_a_body_alike(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, key: bytes | str, in_body: bool
) -> None:
    body: dict[str, Any] = {"topic": "order.placed", "payload": {}}
    headers: dict[str, Any] = dict(AUTH)
    if in_body:
        body["idempotency_key"] = key
    else:
        headers["Idempotency-Key"] = key
    response = await client.post("/events", headers=headers, json=body)
    assert response.status_code == 422, response.text
    field = "idempotency_key" if in_body else "Idempotency-Key"
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert await event_count(pool) == 0
    printable = "".join(chr(c) for c in range(0x20, 0x7F))  # every one, as one key
    plain = {"topic": "order.placed", "payload": {}}
    by_header = await client.post(
        "/events", headers={**AUTH, "Idempotency-Key": printable}, json=plain
    )
    by_body = await client.post(
        "/events", headers=AUTH, json={**plain, "idempotency_key": printable}
    )
    assert (by_header.status_code, by_body.status_code) == (202, 202), by_body.text
    assert by_body.json() == by_header.json()  # the same key, wherever it was given


async def test_readiness_reports_each_dependency(client: AsyncTestClient[Any]) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}}


async def test_schedule_preview_over_http(client: AsyncTestClient[Any]) -> None:
    body = {
        "schedule_kind": "cron",
        "schedule_expr": "30 8 * * 1-5",
        "timezone": "Europe/Chisinau",
        "after": "2026-11-20T12:00:00+02:00",
        "count": 2,
    }
    response = await client.post("/schedules/preview", headers=AUTH, json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "occurrences": ["2026-11-23T08:30:00+02:00", "2026-11-24T08:30:00+02:00"]
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"schedule_kind": "cron", "schedule_expr": "* * * * 8"}, "schedule_expr"),
        (
            {"schedule_kind": "cron", "schedule_expr": "* * * * *", "timezone": "Mars/Olympus"},
            "timezone",
        ),
        ({"schedule_kind": "rrule", "schedule_expr": "FREQ=SOMETIMES"}, "schedule_expr"),
        ({"schedule_kind": "weekly", "schedule_expr": "x"}, "schedule_kind"),
        ({"schedule_kind": "cron", "schedule_expr": "* * * * *", "count": 0}, "count"),
    ],
)
async def test_schedule_preview_names_the_bad_field(
    client: AsyncTestClient[Any], body: dict[str, object], field: str
) -> None:
    response = await client.post("/schedules/preview", headers=AUTH, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


NUL = "a\u0000b"
TASK = {"title": "t", "schedule_kind": "cron", "schedule_expr": "0 8 * * *"}


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "field"),
    [
        ("POST", "/tasks", None, {**TASK, "title": NUL}, "title"),
        ("POST", "/tasks", None, {**TASK, "metadata": {"team": NUL}}, "metadata.team"),
        ("POST", "/tasks", None, {**TASK, "metadata": {NUL: "x"}}, "metadata"),
        ("POST", "/tasks", None, {**TASK, "key": NUL}, "key"),
        (
            "POST",
            "/tasks",
            None,
            {
                **TASK,
                "payload": {"pipeline": [{"id": "a", "uses": "debug.echo", "with": {"t": NUL}}]},
            },
            "payload.pipeline[0].with.t",
        ),
        ("POST", "/tasks/dry_run", None, {"task": {**TASK, "title": NUL}}, "task.title"),
        ("GET", "/tasks", {"q": NUL}, None, "q"),
        ("GET", "/tasks", {"created_by": NUL}, None, "created_by"),
        ("GET", "/tasks", {"key": NUL}, None, "key"),
        ("GET", "/runs", {"task_id": NUL}, None, "task_id"),
        ("GET", "/events", {"stream": NUL}, None, "stream"),
        ("GET", "/events", {"actor": NUL}, None, "actor"),
        ("GET", "/events", {"correlation_id": NUL}, None, "correlation_id"),
        ("POST", "/events", None, {"topic": "a", "payload": {"n": NUL}}, "payload.n"),
        ("POST", "/agents", None, {"name": NUL, "scopes": ["tasks:read"]}, "name"),
    ],
)
async def test_text_with_nul_is_refused_naming_the_field(
    client: AsyncTestClient[Any],
    pool: asyncpg.Pool,
    method: str,
    path: str,
    params: dict[str, str] | None,
    body: dict[str, Any] | None,
    field: str,
) -> None:
    response = await client.request(method, path, params=params, json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == field, response.text
    assert "NUL" in response.json()["errors"][0]["reason"]
    assert await event_count(pool) == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", "/secrets/a%00b"), ("GET", "/tools/a%00b"), ("GET", "/agents/a%00b")],
)
async def test_a_name_with_nul_in_the_path_names_nothing(
    client: AsyncTestClient[Any], method: str, path: str
) -> None:
    response = await client.request(method, path, headers=AUTH)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("after=9223372036854775808-0", "after"),  # a position past BIGINT
        ("after=9999999999999999999", "after"),
        ("after=99999999999999999999-1", "after"),  # a transaction id past xid8
        ("before=9223372036854775808-0", "before"),
        ("cursor=9223372036854775808-0", "cursor"),
        ("since=9999-12-31T23:59:59-14:00", "since"),
        ("until=0001-01-01T00:00:00%2B14:00", "until"),
    ],
)
async def test_cursors_and_instants_out_of_range_are_refused_naming_the_parameter(
    client: AsyncTestClient[Any], query: str, field: str
) -> None:
    response = await client.get(f"/events?{query}", headers=AUTH)
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field], response.text


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/tasks", {**TASK, "dtstart": "9999-12-31T23:59:59-14:00"}, "dtstart"),
        (
            "/events",
            {"topic": "a", "payload": {}, "occurred_at": "0001-01-01T00:00:00+01:00"},
            "occurred_at",
        ),
        (
            "/schedules/preview",
            {
                "schedule_kind": "cron",
                "schedule_expr": "0 8 * * *",
                "after": "9999-12-31T23:30:00-01:00",
            },
            "after",
        ),
    ],
)
async def test_instants_no_date_time_can_hold_are_refused_naming_the_field(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, path: str, body: dict[str, Any], field: str
) -> None:
    response = await client.post(path, json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    assert "range" in response.json()["errors"][0]["reason"]
    assert await event_count(pool) == 0


async def test_a_forged_page_cursor_out_of_range_is_refused_naming_cursor(
    client: AsyncTestClient[Any],
) -> None:
    for position in ("9999-12-31T23:59:59-14:00|x", "2026-01-01T00:00:00+00:00|x\u0000"):
        forged = base64.urlsafe_b64encode(position.encode()).decode()
        for path in ("/tasks", "/runs"):
            response = await client.get(path, params={"cursor": forged}, headers=AUTH)
            assert response.status_code == 422, response.text
            assert response.json()["errors"][0]["field"] == "cursor"
