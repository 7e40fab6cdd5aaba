"""The dashboard's doors: sign-in and sessions, CSRF, scopes, and nothing for strangers."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import httpx

from services.api.app import ApiConfig, create_app
from tests.ui_client import (
    ALL_SCOPES,
    agent_token,
    csrf_of,
    nonce_of,
    post_form,
    sign_in,
    signed_in,
)
from tests.workers import AUTH, create_task

_PARAM = re.compile(r"\{[^}]+\}")
_ID = "00000000-0000-4000-8000-000000000000"
PAGE_HEADERS = {
    "content-security-policy": "default-src 'self'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def ui_routes() -> list[tuple[str, str]]:
    """(method, path with placeholders filled) of every dashboard route a visitor can call."""
    app = create_app(ApiConfig("postgresql://unused", "redis://unused", b"x" * 32))
    found = []
    for route in app.routes:
        if not route.path.startswith("/ui") or route.path.startswith("/ui/static"):
            continue
        for handler in getattr(route, "route_handlers", ()):
            if handler.opt.get("ui_public"):
                continue
            for method in sorted(getattr(handler, "http_methods", ())):
                if method not in ("HEAD", "OPTIONS"):
                    path = _PARAM.sub(_ID, route.path).replace(f"{_ID}/{_ID}", f"{_ID}/pause")
                    found.append((method, path))
    return found


async def test_signing_in_sets_a_strict_http_only_cookie_that_holds_no_token(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    _, token = await agent_token(client, "reader", ALL_SCOPES)
    async with httpx.AsyncClient(base_url=client.base_url) as ui:
        form = await ui.get("/ui/login")
        assert '<input name="token"' in form.text
        assert re.search(r"<button[^>]*>Sign in</button>", form.text)
        response = await sign_in(ui, token)
        assert response.status_code == 303
        assert response.headers["location"] == "/ui"
        cookie = next(
            c for c in response.headers.get_list("set-cookie") if c.startswith("ordinaut_session=")
        )
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "samesite=strict", "path=/ui"} <= flags
        assert token not in cookie
        stored = await pool.fetchrow("SELECT * FROM ui_session")
        assert token not in str(dict(stored))
        overview = await ui.get("/ui")
        assert overview.status_code == 200
        assert "reader" in overview.text
        assert re.search(r"<button[^>]*>Sign out</button>", overview.text)
        for label, href in (
            ("Overview", "/ui"),
            ("Tasks", "/ui/tasks"),
            ("Runs", "/ui/runs"),
            ("Events", "/ui/events"),
        ):
            assert re.search(rf'<a href="{href}"[^>]*>{label}</a>', overview.text), label

        out = await ui.post("/ui/logout", data={"csrf_token": csrf_of(overview.text)})
        assert out.status_code == 303
        assert await pool.fetchval("SELECT count(*) FROM ui_session") == 0
        assert (await ui.get("/ui")).status_code == 303


async def test_a_wrong_token_or_a_stale_form_signs_nobody_in(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    async with httpx.AsyncClient(base_url=client.base_url) as ui:
        wrong = await sign_in(ui, "not-a-token-at-all")
        assert wrong.status_code == 401
        assert 'data-testid="error"' in wrong.text
        assert "token" in wrong.text
        empty = await sign_in(ui, "  ")
        assert empty.status_code == 422
        form = await ui.get("/ui/login")
        forged_form = {"token": AUTH["Authorization"][7:], "csrf_token": "x" + csrf_of(form.text)}
        forged = await ui.post("/ui/login", data=forged_form)
        assert forged.status_code == 403
    assert await pool.fetchval("SELECT count(*) FROM ui_session") == 0


async def test_without_a_session_pages_redirect_to_sign_in_and_actions_give_nothing(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    routes = ui_routes()
    assert len(routes) >= 14, routes
    before = await pool.fetchval("SELECT count(*) FROM events")
    failures: list[Any] = []
    async with httpx.AsyncClient(base_url=client.base_url) as ui:
        for cookie in (None, "forged-session-id"):
            ui.cookies.clear()
            if cookie:
                ui.cookies.set("ordinaut_session", cookie, path="/ui")
            for method, path in routes:
                response = await ui.request(method, path, data={"csrf_token": "x"})
                if method == "GET":
                    where = response.headers.get("location", "")
                    if response.status_code != 303 or not where.startswith("/ui/login?next="):
                        failures.append((method, path, response.status_code, where))
                    polled = await ui.get(path, headers={"HX-Request": "true"})
                    if (
                        polled.status_code != 401
                        or polled.headers.get("hx-redirect") != "/ui/login"
                    ):
                        failures.append((method, path, "htmx", polled.status_code))
                elif response.status_code != 401:
                    failures.append((method, path, response.status_code))
    assert failures == []
    assert await pool.fetchval("SELECT count(*) FROM events") == before


async def test_the_next_page_survives_signing_in(client: httpx.AsyncClient) -> None:
    _, token = await agent_token(client, "deep-link", ALL_SCOPES)
    async with httpx.AsyncClient(base_url=client.base_url) as ui:
        redirect = await ui.get("/ui/runs?status=dead")
        assert redirect.headers["location"] == "/ui/login?next=%2Fui%2Fruns%3Fstatus%3Ddead"
        assert (await sign_in(ui, token, "/ui/runs?status=dead")).headers["location"] == (
            "/ui/runs?status=dead"
        )
        ui.cookies.clear()
        elsewhere = await sign_in(ui, token, "https://evil.example/ui")
        assert elsewhere.headers["location"] == "/ui"


async def test_pages_and_buttons_follow_the_tokens_scopes(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    admins = await create_task(client, [{"id": "a", "uses": "debug.echo"}], title="Admin's task")
    agent_id, token = await agent_token(client, "scoped", ["tasks:read", "tasks:write"])
    created = await client.post(
        "/tasks",
        json={"title": "Scoped task", "schedule_kind": "cron", "schedule_expr": "0 9 * * *"},
        headers={"Authorization": f"Bearer {token}"},
    )
    task_id = created.json()["id"]
    async with signed_in(client, token) as ui:
        page = await ui.get(f"/ui/tasks/{task_id}")
        assert re.search(r"<button[^>]*>Run now</button>", page.text)
        # Scopes are read on every request: taking one away applies to the open session.
        changed = await client.patch(
            f"/agents/{agent_id}", json={"scopes": ["tasks:read"]}, headers=AUTH
        )
        assert changed.status_code == 200, changed.text
        page = await ui.get(f"/ui/tasks/{task_id}")
        assert "Run now" not in page.text
        assert "Pause" not in page.text
        before = await pool.fetchval("SELECT count(*) FROM events")
        refused = await ui.post(
            f"/ui/tasks/{task_id}/run-now", data={"csrf_token": csrf_of(page.text)}
        )
        assert refused.status_code == 403
        assert "tasks:write" in refused.text
        assert await pool.fetchval("SELECT count(*) FROM events") == before

        tasks = await ui.get("/ui/tasks")
        assert "Scoped task" in tasks.text
        assert "Admin" not in tasks.text
        assert (await ui.get(f"/ui/tasks/{admins['id']}")).status_code == 404
        for path in ("/ui/runs", "/ui/events", "/ui/runs/retry-dead", "/ui/runs/" + _ID):
            refused = await ui.get(path)
            assert refused.status_code == 403, path
            assert 'data-testid="error"' in refused.text
        overview = await ui.get("/ui")
        assert 'data-testid="task-counts"' in overview.text
        assert 'data-testid="run-counts"' not in overview.text
        assert "Ingest dead letters" not in overview.text


async def test_a_form_without_the_sessions_csrf_token_changes_nothing(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    _, token = await agent_token(client, "csrf", ALL_SCOPES)
    created = await client.post(
        "/tasks",
        json={"title": "Guarded", "schedule_kind": "cron", "schedule_expr": "0 9 * * *"},
        headers={"Authorization": f"Bearer {token}"},
    )
    task_id = created.json()["id"]
    async with signed_in(client, token) as ui:
        page = await ui.get(f"/ui/tasks/{task_id}")
        before = await pool.fetchval("SELECT count(*) FROM events")
        for data in ({}, {"csrf_token": "wrong"}, {"csrf_token": ""}):
            refused = await ui.post(f"/ui/tasks/{task_id}/pause", data=data)
            assert refused.status_code == 403, data
            assert "CSRF" in refused.text
        assert await pool.fetchval("SELECT count(*) FROM events") == before
        # htmx requests send it as a header instead of a field.
        paused = await ui.post(
            f"/ui/tasks/{task_id}/pause", headers={"X-CSRF-Token": csrf_of(page.text)}
        )
        assert paused.status_code == 303
        assert nonce_of(page.text)
    async with signed_in(client, token) as other:
        # Another session's token is no good either.
        stale = await post_form(other, "/ui", f"/ui/tasks/{task_id}/resume")
        assert stale.status_code == 303
        elsewhere = {"csrf_token": csrf_of(page.text)}
        refused = await other.post(f"/ui/tasks/{task_id}/pause", data=elsewhere)
        assert refused.status_code == 403


async def test_revoking_the_token_ends_its_sessions(client: httpx.AsyncClient) -> None:
    agent_id, token = await agent_token(client, "revoked", ALL_SCOPES)
    async with signed_in(client, token) as ui:
        assert (await ui.get("/ui")).status_code == 200
        tokens = (await client.get(f"/agents/{agent_id}", headers=AUTH)).json()
        token_id = tokens["tokens"][0]["id"]
        await client.delete(f"/agents/{agent_id}/tokens/{token_id}", headers=AUTH)
        assert (await ui.get("/ui")).status_code == 303


async def test_pages_carry_security_headers_and_stay_out_of_the_api_schema(
    client: httpx.AsyncClient,
) -> None:
    async with signed_in(client, AUTH["Authorization"][7:]) as ui:
        for path in ("/ui/login", "/ui", "/ui/tasks/" + _ID):
            response = await ui.get(path)
            for name, value in PAGE_HEADERS.items():
                assert value in response.headers.get(name, ""), (path, name)
            assert response.headers["cache-control"] == "no-store"
        script = await ui.get("/ui/static/htmx.min.js")
        assert script.status_code == 200
        assert "htmx" in script.text[:200]
    schema = (await client.get("/schema/openapi.json")).json()
    assert not [path for path in schema["paths"] if path.startswith("/ui")]
    assert "content-security-policy" not in (await client.get("/health/live")).headers
