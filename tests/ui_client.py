"""Helpers for dashboard tests: agents with chosen scopes, signing in, and reading forms."""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import AsyncIterator

import httpx

from tests.workers import AUTH

ALL_SCOPES = [
    "tasks:read",
    "tasks:write",
    "runs:read",
    "runs:approve",
    "events:read",
    "events:publish",
]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_NONCE = re.compile(r'name="nonce" value="([^"]+)"')


async def agent_token(api: httpx.AsyncClient, name: str, scopes: list[str]) -> tuple[str, str]:
    """A new agent with these scopes: its id and a token."""
    agent = await api.post("/agents", json={"name": name, "scopes": scopes}, headers=AUTH)
    assert agent.status_code == 201, agent.text
    agent_id = agent.json()["id"]
    token = await api.post(f"/agents/{agent_id}/tokens", json={}, headers=AUTH)
    assert token.status_code == 201, token.text
    return agent_id, token.json()["token"]


def csrf_of(page: str) -> str:
    """The CSRF token the page's forms carry."""
    found = _CSRF.search(page)
    assert found, "the page has no form"
    return html.unescape(found.group(1))


def nonce_of(page: str) -> str:
    """The one-time id of the page's first action form."""
    found = _NONCE.search(page)
    assert found, "the page has no action form"
    return found.group(1)


async def sign_in(ui: httpx.AsyncClient, token: str, wanted: str = "/ui") -> httpx.Response:
    """Post the sign-in form as a browser would (its CSRF cookie and field)."""
    form = await ui.get("/ui/login")
    assert form.status_code == 200, form.text
    return await ui.post(
        "/ui/login", data={"token": token, "csrf_token": csrf_of(form.text), "next": wanted}
    )


@contextlib.asynccontextmanager
async def signed_in(api: httpx.AsyncClient, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client of the same server, signed in with ``token``."""
    async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as ui:
        response = await sign_in(ui, token)
        assert response.status_code == 303, response.text
        yield ui


async def post_form(
    ui: httpx.AsyncClient, page_url: str, action: str, **fields: str
) -> httpx.Response:
    """Load the page, then submit one of its forms (CSRF token and a fresh nonce included)."""
    page = await ui.get(page_url)
    assert page.status_code == 200, page.text
    data = {"csrf_token": csrf_of(page.text), **fields}
    return await ui.post(action, data=data)
