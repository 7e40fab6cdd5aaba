"""Issue 18, finding 10: failed authentications are limited per client address (API bearer
tokens and /ui/login); a valid token is never refused by that limit."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar

from domain.rate_limits import AUTH_FAILURES, RateLimit
from services.api.app import ApiConfig, create_app
from services.api.auth_failures import FailedAuthLimiter
from services.runtime.admin_token import token_hash
from services.runtime.settings import Settings, SettingsError
from tests.ui_client import csrf_of

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WRONG = {"Authorization": "Bearer not-a-token"}
# Five failures, then one more per hour: no refill can happen while the test runs.
LIMIT = RateLimit(1 / 3600, 5)


@contextlib.asynccontextmanager
async def serving(database_url: str, redis_url: str) -> AsyncIterator[Litestar]:
    """The app with its lifespan (pools) run in this task: the clients below call it directly,
    each from its own client address."""
    config = ApiConfig(database_url, redis_url, token_hash(ADMIN_TOKEN), auth_failure_limit=LIMIT)
    app = create_app(config)
    async with app.lifespan():
        yield app


def _from(app: Litestar, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


async def test_an_address_failing_too_often_gets_429_but_valid_tokens_go_through(
    database_url: str, redis_url: str
) -> None:
    async with (
        serving(database_url, redis_url) as app,
        _from(app, "192.0.2.7") as attacker,
        _from(app, "192.0.2.8") as neighbour,
    ):
        for _ in range(LIMIT.burst):
            assert (await attacker.get("/tasks", headers=WRONG)).status_code == 401
        refused = await attacker.get("/tasks", headers=WRONG)
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["retry-after"]) <= 3600
        assert "failed authentications" in refused.json()["detail"]
        # the same address with a valid token, and another address failing, are not limited
        assert (await attacker.get("/tasks", headers=ADMIN)).status_code == 200
        assert (await neighbour.get("/tasks", headers=WRONG)).status_code == 401

        # the sign-in form counts against the same address
        form = await attacker.get("/ui/login")
        data = {"token": "not-a-token", "csrf_token": csrf_of(form.text), "next": "/ui"}
        page = await attacker.post("/ui/login", data=data)
        assert page.status_code == 429, page.text
        assert int(page.headers["retry-after"]) >= 1
        assert "too many failed sign-ins" in page.text
        again = {**data, "token": ADMIN_TOKEN, "csrf_token": csrf_of(page.text)}
        signed_in = await attacker.post("/ui/login", data=again)
        assert signed_in.status_code == 303, signed_in.text


async def test_failed_sign_ins_alone_reach_the_limit(database_url: str, redis_url: str) -> None:
    async with serving(database_url, redis_url) as app, _from(app, "198.51.100.3") as browser:
        form = await browser.get("/ui/login")
        data = {"token": "not-a-token", "csrf_token": csrf_of(form.text), "next": "/ui"}
        answers = []
        for _ in range(6):
            page = await browser.post("/ui/login", data=data)
            answers.append(page.status_code)
            data["csrf_token"] = csrf_of(page.text)  # each form carries a new one
    assert answers == [401] * 5 + [429]


def test_the_limit_is_a_setting_with_a_default() -> None:
    assert Settings.from_env({}).auth_failure_limit == AUTH_FAILURES == RateLimit(20 / 60, 20)
    custom = Settings.from_env({"ORDINAUT_AUTH_FAILURE_LIMIT": "5/min burst 10"})
    assert custom.auth_failure_limit == RateLimit(5 / 60, 10)
    assert Settings.from_env({"ORDINAUT_AUTH_FAILURE_LIMIT": "off"}).auth_failure_limit is None
    with pytest.raises(SettingsError, match="ORDINAUT_AUTH_FAILURE_LIMIT"):
        Settings.from_env({"ORDINAUT_AUTH_FAILURE_LIMIT": "lots"})


def test_the_limiter_forgets_the_least_recent_addresses_beyond_its_bound() -> None:
    limiter = FailedAuthLimiter(RateLimit(1 / 3600, 1), max_addresses=2, clock=lambda: 0.0)
    assert limiter.failed("a") is None
    assert limiter.failed("a") is not None
    assert limiter.failed("b") is None
    assert limiter.failed("c") is None  # "a" is forgotten: memory stays bounded
    assert limiter.failed("a") is None
