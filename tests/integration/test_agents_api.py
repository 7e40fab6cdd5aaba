"""Agents over HTTP: the admin manages them, their tokens authenticate, revocation is instant."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from projections.rebuild import rebuild
from projections.registry import inline_projections
from services.api.app import ApiConfig, create_app
from services.runtime.admin_token import token_hash

ADMIN = "admin-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(ApiConfig(database_url, redis_url, token_hash(ADMIN)))
    async with AsyncTestClient(app) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create_agent(client: AsyncTestClient[Any], name: str, *scopes: str) -> dict[str, Any]:
    response = await client.post("/agents", headers=AUTH, json={"name": name, "scopes": scopes})
    assert response.status_code == 201, response.text
    agent: dict[str, Any] = response.json()
    return agent


async def issue(client: AsyncTestClient[Any], agent_id: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/agents/{agent_id}/tokens", headers=AUTH, json=body)
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


async def event_count(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM events"))


async def test_the_admin_creates_lists_and_reads_agents(client: AsyncTestClient[Any]) -> None:
    body = {
        "name": "Mailer",
        "scopes": ["tasks:write", "events:read", "tasks:write"],
        "webhook_url": "https://hooks.example.com/ordinaut",
    }
    response = await client.post("/agents", headers=AUTH, json=body)
    assert response.status_code == 201, response.text
    mailer = response.json()
    assert set(mailer) == {
        "id",
        "name",
        "scopes",
        "webhook_url",
        "created_at",
        "tokens",
        "notify_events",
        "webhook_secret",
    }
    assert mailer["notify_events"] is None  # the defaults
    assert mailer["webhook_secret"] is None  # this app has no webhook key
    assert uuid.UUID(mailer["id"])
    assert mailer["name"] == "Mailer"
    assert mailer["scopes"] == ["events:read", "tasks:write"]  # sorted, without repeats
    assert mailer["webhook_url"] == "https://hooks.example.com/ordinaut"
    assert mailer["tokens"] == []
    reporter = await create_agent(client, "reporter", "runs:read")
    assert reporter["webhook_url"] is None

    listed = await client.get("/agents", headers=AUTH)
    assert listed.status_code == 200
    assert listed.json() == {"items": [mailer, reporter]}
    got = await client.get(f"/agents/{mailer['id']}", headers=AUTH)
    assert (got.status_code, got.json()) == (200, mailer)
    upper = await client.get(f"/agents/{mailer['id'].upper()}", headers=AUTH)
    assert upper.json() == mailer


# A fixed unknown id: pytest-xdist requires every worker to collect the same test ids.
UNKNOWN_AGENT = "6f1c2a9e-4b1d-4c3e-9a7f-0d2b8e5c1a34"


@pytest.mark.parametrize("agent_id", [UNKNOWN_AGENT, "not-a-uuid", "%00", "1'; DROP"])
async def test_an_unknown_or_malformed_agent_id_is_a_404_problem(
    client: AsyncTestClient[Any], agent_id: str
) -> None:
    for response in (
        await client.get(f"/agents/{agent_id}", headers=AUTH),
        await client.post(f"/agents/{agent_id}/tokens", headers=AUTH, json={}),
        await client.delete(f"/agents/{agent_id}/tokens/{uuid.uuid4()}", headers=AUTH),
    ):
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 404


async def test_an_agent_token_authenticates_with_the_agent_scopes(
    client: AsyncTestClient[Any],
) -> None:
    reader = await create_agent(client, "reader", "events:read")
    publisher = await create_agent(client, "publisher", "events:publish")
    reader_token = (await issue(client, reader["id"], label="ci"))["token"]
    publisher_token = (await issue(client, publisher["id"]))["token"]

    assert (await client.get("/events", headers=bearer(reader_token))).status_code == 200
    denied = await client.get("/events", headers=bearer(publisher_token))
    assert denied.status_code == 403
    assert denied.headers["content-type"] == "application/problem+json"
    published = await client.post(
        "/events", headers=bearer(publisher_token), json={"topic": "build.done", "payload": {}}
    )
    assert published.status_code == 202, published.text
    # Every event an agent causes names it as the actor; another agent does not see it.
    log = (await client.get("/events", headers=AUTH)).json()["items"]
    assert log[-1]["type"] == "event.received"
    assert log[-1]["meta"]["actor"] == publisher["id"]
    seen = (await client.get("/events", headers=bearer(reader_token))).json()["items"]
    assert all(event["meta"]["actor"] != publisher["id"] for event in seen)


async def test_issuing_a_token_shows_it_once_and_lists_only_its_metadata(
    client: AsyncTestClient[Any],
) -> None:
    agent = await create_agent(client, "worker", "runs:read")
    labelled = await issue(client, agent["id"], label="laptop")
    assert set(labelled) == {"id", "token", "label", "created_at"}
    assert labelled["label"] == "laptop"
    assert len(labelled["token"]) >= 43
    empty_body = await client.post(f"/agents/{agent['id']}/tokens", headers=AUTH)
    assert empty_body.status_code == 201, empty_body.text
    unlabelled = empty_body.json()
    assert unlabelled["label"] is None
    assert unlabelled["token"] != labelled["token"]

    got = await client.get(f"/agents/{agent['id']}", headers=AUTH)
    assert got.json()["tokens"] == [
        {"id": t["id"], "label": t["label"], "created_at": t["created_at"], "revoked_at": None}
        for t in (labelled, unlabelled)
    ]
    for token in (labelled["token"], unlabelled["token"]):
        assert token not in got.text
        assert hashlib.sha256(token.encode()).hexdigest() not in got.text


async def test_a_revoked_token_is_refused_on_the_very_next_request(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    agent = await create_agent(client, "reader", "events:read")
    kept, doomed = await issue(client, agent["id"]), await issue(client, agent["id"])
    assert (await client.get("/events", headers=bearer(doomed["token"]))).status_code == 200

    path = f"/agents/{agent['id']}/tokens/{doomed['id']}"
    revoked = await client.delete(path, headers=AUTH)
    assert (revoked.status_code, revoked.content) == (204, b"")
    refused = await client.get("/events", headers=bearer(doomed["token"]))
    unknown = await client.get("/events", headers=bearer("never-issued"))
    assert refused.status_code == unknown.status_code == 401
    assert refused.json()["detail"] == unknown.json()["detail"]  # never says "revoked"
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert (await client.get("/events", headers=bearer(kept["token"]))).status_code == 200

    events = await event_count(pool)
    again = await client.delete(path, headers=AUTH)
    assert again.status_code == 204
    assert await event_count(pool) == events  # nothing more to record
    tokens = (await client.get(f"/agents/{agent['id']}", headers=AUTH)).json()["tokens"]
    assert [t["revoked_at"] is not None for t in tokens] == [False, True]
    missing = await client.delete(f"/agents/{agent['id']}/tokens/{uuid.uuid4()}", headers=AUTH)
    other_agent = await create_agent(client, "other", "events:read")
    wrong_owner = await client.delete(
        f"/agents/{other_agent['id']}/tokens/{kept['id']}", headers=AUTH
    )
    assert missing.status_code == wrong_owner.status_code == 404
    assert await event_count(pool) == events + 1


async def test_concurrent_revocations_record_one_event(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    agent = await create_agent(client, "reader", "events:read")
    token = await issue(client, agent["id"])
    path = f"/agents/{agent['id']}/tokens/{token['id']}"
    responses = await asyncio.gather(*(client.delete(path, headers=AUTH) for _ in range(5)))
    assert {r.status_code for r in responses} == {204}
    revocations = "SELECT count(*) FROM events WHERE type = 'agent.token_revoked'"
    assert await pool.fetchval(revocations) == 1


async def test_a_duplicate_name_is_a_409_and_records_nothing(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    await create_agent(client, "Mailer", "tasks:read")
    events = await event_count(pool)
    for name in ("Mailer", "mailer", "MAILER"):
        response = await client.post(
            "/agents", headers=AUTH, json={"name": name, "scopes": ["tasks:read"]}
        )
        assert response.status_code == 409, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["field"] == "name"
    assert await event_count(pool) == events


async def test_concurrent_creates_of_one_name_give_one_agent(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    body = {"name": "racer", "scopes": ["tasks:read"]}
    responses = await asyncio.gather(
        *(client.post("/agents", headers=AUTH, json=body) for _ in range(6))
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 5
    assert await pool.fetchval("SELECT count(*) FROM agent") == 1
    assert await event_count(pool) == 1


BAD_AGENTS = [
    pytest.param({"name": "a", "scopes": ["tasks:read", "tasks:delete"]}, "scopes", id="scope"),
    pytest.param({"name": "a", "scopes": []}, "scopes", id="no-scopes"),
    pytest.param({"name": "a", "scopes": "admin"}, "scopes", id="scopes-not-a-list"),
    pytest.param({"name": "a", "scopes": ["admin"], "role": "x"}, "role", id="unknown-field"),
    pytest.param({"scopes": ["admin"]}, "name", id="missing-name"),
    pytest.param({"name": "", "scopes": ["admin"]}, "name", id="empty-name"),
    pytest.param({"name": "x" * 101, "scopes": ["admin"]}, "name", id="long-name"),
    pytest.param({"name": " padded ", "scopes": ["admin"]}, "name", id="padded-name"),
    pytest.param({"name": "nul\x00", "scopes": ["admin"]}, "name", id="nul-name"),
    pytest.param(
        {"name": "a", "scopes": ["admin"], "webhook_url": "ftp://example.com/x"},
        "webhook_url",
        id="ftp-webhook",
    ),
    pytest.param(
        {"name": "a", "scopes": ["admin"], "webhook_url": "https://"}, "webhook_url", id="no-host"
    ),
    pytest.param(
        {"name": "a", "scopes": ["admin"], "webhook_url": "hooks.example.com"},
        "webhook_url",
        id="relative-webhook",
    ),
    pytest.param(
        {"name": "a", "scopes": ["admin"], "notify_events": ["run.succeded"]},
        "notify_events",
        id="unknown-notify-event",
    ),
    pytest.param(
        {"name": "a", "scopes": ["admin"], "notify_events": "run.dead"},
        "notify_events",
        id="notify-events-not-a-list",
    ),
]


@pytest.mark.parametrize(("body", "field"), BAD_AGENTS)
async def test_an_invalid_agent_is_a_422_naming_the_field(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/agents", headers=AUTH, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == field
    assert await event_count(pool) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [({"label": "x" * 101}, "label"), ({"label": "tab\there"}, "label"), ({"lable": "x"}, "lable")],
)
async def test_an_invalid_token_request_is_a_422(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, body: dict[str, Any], field: str
) -> None:
    agent = await create_agent(client, "a", "runs:read")
    response = await client.post(f"/agents/{agent['id']}/tokens", headers=AUTH, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    assert await event_count(pool) == 1


async def test_only_admins_manage_agents(client: AsyncTestClient[Any]) -> None:
    ordinary = await create_agent(
        client,
        "ordinary",
        "tasks:read",
        "tasks:write",
        "runs:read",
        "runs:approve",
        "events:publish",
        "events:read",
    )
    token = bearer((await issue(client, ordinary["id"]))["token"])
    body = {"name": "sneaky", "scopes": ["admin"]}
    for response in (
        await client.post("/agents", headers=token, json=body),
        await client.get("/agents", headers=token),
        await client.get(f"/agents/{ordinary['id']}", headers=token),
        await client.post(f"/agents/{ordinary['id']}/tokens", headers=token, json={}),
    ):
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert (await client.post("/agents", json=body)).status_code == 401

    # An agent holding the admin scope is an admin, and is recorded as itself.
    admin_agent = await create_agent(client, "ops", "admin")
    admin_token = bearer((await issue(client, admin_agent["id"]))["token"])
    created = await client.post("/agents", headers=admin_token, json=body)
    assert created.status_code == 201, created.text
    log = (await client.get("/events", headers=AUTH)).json()["items"]
    assert log[-1]["meta"]["actor"] == admin_agent["id"]


async def test_the_log_records_agent_events_by_the_admin_without_raw_tokens(
    client: AsyncTestClient[Any],
) -> None:
    headers = {**AUTH, "X-Correlation-ID": "provision-1"}
    created = await client.post(
        "/agents", headers=headers, json={"name": "bot", "scopes": ["events:read"]}
    )
    agent = created.json()
    issued = await client.post(f"/agents/{agent['id']}/tokens", headers=headers, json={})
    token = issued.json()
    path = f"/agents/{agent['id']}/tokens/{token['id']}"
    assert (await client.delete(path, headers=headers)).status_code == 204

    page = await client.get("/events", headers=AUTH)
    items = page.json()["items"]
    assert [item["type"] for item in items] == [
        "agent.created",
        "agent.token_issued",
        "agent.token_revoked",
    ]
    assert {item["stream"] for item in items} == {f"agent-{agent['id']}"}
    assert [item["version"] for item in items] == [1, 2, 3]
    assert {item["meta"]["actor"] for item in items} == {"admin"}
    assert {item["meta"]["correlation_id"] for item in items} == {"provision-1"}
    assert token["token"] not in page.text
    issued_data = items[1]["data"]
    assert issued_data["token_id"] == token["id"]
    assert issued_data["token_sha256"] == hashlib.sha256(token["token"].encode()).hexdigest()
    assert items[2]["data"] == {
        "type": "agent.token_revoked",
        "agent_id": agent["id"],
        "token_id": token["id"],
    }


async def snapshot(conn: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
    return {
        table: [dict(row) for row in await conn.fetch(f"SELECT * FROM {table} ORDER BY id")]
        for table in ("agent", "agent_token")
    }


async def test_a_rebuild_reproduces_the_agent_tables(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    first = await create_agent(client, "first", "events:read", "tasks:read")
    await create_agent(client, "second", "admin")
    kept, doomed = await issue(client, first["id"], label="a"), await issue(client, first["id"])
    await client.delete(f"/agents/{first['id']}/tokens/{doomed['id']}", headers=AUTH)
    async with pool.acquire() as conn:
        live = await snapshot(conn)
        assert len(live["agent"]) == 2
        assert len(live["agent_token"]) == 2
        agent_only = inline_projections().named(["agent"])
        assert await rebuild(conn, agent_only) == 5
        assert await snapshot(conn) == live
    # Authentication reads the rebuilt tables.
    assert (await client.get("/events", headers=bearer(kept["token"]))).status_code == 200
    assert (await client.get("/events", headers=bearer(doomed["token"]))).status_code == 401


async def test_the_admin_sees_the_webhook_secret_and_chosen_events(
    database_url: str, redis_url: str
) -> None:
    from domain.webhook_signing import webhook_secret

    key = b"webhook-key-for-tests-0123456789"
    app = create_app(ApiConfig(database_url, redis_url, token_hash(ADMIN), webhook_key=key))
    async with AsyncTestClient(app) as client:
        body = {
            "name": "hooked",
            "scopes": ["runs:read"],
            "webhook_url": "https://h.example/x",
            "notify_events": ["run.dead", "run.queued", "run.dead"],
        }
        created = (await client.post("/agents", headers=AUTH, json=body)).json()
        assert created["webhook_secret"] == webhook_secret(key, created["id"])
        assert created["notify_events"] == ["run.dead", "run.queued"]
        read = (await client.get(f"/agents/{created['id']}", headers=AUTH)).json()
        assert read == created
        plain = await create_agent(client, "no hook", "runs:read")
        assert plain["webhook_secret"] is None
