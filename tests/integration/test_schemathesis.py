"""Schemathesis against the OpenAPI document: every check it has, every operation, two tokens.

Each API operation is one test per token (the admin's, and an agent's holding every API scope
but admin): schemathesis's coverage phase (boundary and invalid values from the schema), then
MAX_EXAMPLES fuzzed requests, with ALL its checks (status codes, content types and bodies as
documented, schema-violating input refused, schema-valid input accepted, Allow on OPTIONS and
405, auth) plus ours (every 4xx a problem). A stateful test then chains operations through the
links schemathesis infers from the document. Everything is derandomized (one seed), so CI sends
the same requests on every run.

One check is widened, for a stated reason: ``positive_data_acceptance`` also accepts 422,
because some rules cannot be said in JSON Schema, and the API answers them with a 422 naming
the field: schedule expressions and templates (cron syntax, a zone's existence), cross-field
rules (quiet hours that must differ), opaque cursors, known scope and tool names, an
idempotency key reused with another request; and ``format: date-time`` is only an annotation
in JSON Schema 2020-12, so schemathesis sends "" as a valid date-time.

The app is built as in test_tasks_api.py and served by a real uvicorn on 127.0.0.1 in a
thread of this process, so its lifespan (asyncpg pool, Redis client) runs as in production
and a server error's traceback is in the captured output. One server per token serves the
whole module, on one database (a case makes the resources it needs), which halves the run.

The token goes through schemathesis's auth (a stand-in swapped for the live token per
request), not as a header the test adds: schemathesis knows when a negative case dropped
Authorization on purpose, and then sends none. Undeclared query parameters and headers are
allowed by OpenAPI, and schemathesis does not count them as violations on their own.

The fuzzed document is the one served at /schema/openapi.json (a test below proves it). It
is built from the app at import time because schemathesis's pytest plugin wants the schema
when it collects the tests; its lazy loader (schemathesis.pytest.from_fixture) fails on
pytest 9 (schemathesis 4.32.5 sets ``node._nodeid``, which pytest 9 no longer has). On
pytest 9 every operation's test also gets the same node id (pytest builds ids from the
original name), so the summary line does not name the operation: the failure's header and
its curl reproduction do.
"""

from __future__ import annotations

import copy
import socket
import threading
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from unittest.mock import ANY

import httpx
import hypothesis
import msgspec
import pytest
import schemathesis
import uvicorn

from services.api.app import ApiConfig, create_app
from services.runtime.admin_token import token_hash
from services.runtime.embedded import with_database
from tests.database_pool import DatabasePool

ADMIN = "admin-token-for-schemathesis-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
CRON = {
    "title": "Standup",
    "schedule_kind": "cron",
    "schedule_expr": "30 8 * * 1-5",
    "timezone": "Europe/Chisinau",
}
PROBLEM_JSON = "application/problem+json"
MAX_EXAMPLES = 8  # fuzzed requests per operation and token, on top of the coverage phase's
STATEFUL_EXAMPLES = 15  # scenarios of the stateful test, per token
SEED = 20_251_122

pytestmark = pytest.mark.slow


def _document() -> dict[str, Any]:
    """The app's OpenAPI document (create_app opens no connection before its lifespan)."""
    config = ApiConfig(
        "postgresql://unused@127.0.0.1/unused", "redis://127.0.0.1", token_hash(ADMIN)
    )
    schema = create_app(config).openapi_schema.to_schema()
    document: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(schema))
    return document


DOCUMENT = _document()
# A copy: schemathesis rewrites the document it is given as it generates (it bundles refs).
schema = schemathesis.openapi.from_dict(
    copy.deepcopy(DOCUMENT),
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # Health checks judge how hard data is to generate, which varies with the
            # machine's load; they say nothing about the server, so they only add flakiness.
            "suppress-health-check": ["all"],
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            # Generous: a loaded 2-core machine once took over 10 s to answer one PATCH; how
            # fast the server answers is the benchmarks' business, not the contract's.
            "request-timeout": 30,
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "3xx", "403", "404", "409", "422", "429"]
                }
            },
        }
    ),
)

# Generated cases carry this stand-in for the token, which the test swaps for the live one.
# Schemathesis must set the header itself: a negative case may drop the required
# Authorization on purpose, and a token the test added on top would undo that negation
# (the server then rightly answers 200, and ``negative_data_rejection`` fails).
STAND_IN = "Bearer token-of-the-running-test"


@schema.auth(refresh_interval=None)
class StandInToken:
    """Sets the stand-in on every case whose Authorization is not the negated part.

    Coverage-phase cases are built when the tests are collected, before a server or an
    agent token exists, and each is shared by both tokens' runs: so the token is swapped in
    per request (``_live_headers``), never written into the case.
    """

    def get(self, case: schemathesis.Case[Any], ctx: schemathesis.AuthContext) -> str:
        return STAND_IN

    def set(self, case: schemathesis.Case[Any], data: str, ctx: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": data}


def _live_headers(case: schemathesis.Case[Any], token: str) -> dict[str, str]:
    """The live token for a case that carries the stand-in; nothing for one that must not."""
    if (case.headers or {}).get("Authorization") != STAND_IN:
        return {}
    return {"Authorization": f"Bearer {token}"}


@dataclass
class LiveApi:
    """The served app, and a client (with the token under test) to make resources its
    handlers can find."""

    base_url: str
    client: httpx.Client
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def _created(self, path: str, body: dict[str, Any]) -> str:
        response = self.client.post(path, json=body)
        assert response.status_code == 201, response.text
        made: str = response.json()["id"]
        return made

    def fresh_task(self) -> str:
        return self._created("/tasks", CRON)

    def fresh_agent(self) -> str:
        return self._created(
            "/agents", {"name": f"fuzz-{uuid.uuid4().hex}", "scopes": ["tasks:read"]}
        )

    def fresh_token(self, agent_id: str) -> str:
        return self._created(f"/agents/{agent_id}/tokens", {"label": "fuzz"})


def _serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    """uvicorn on a free 127.0.0.1 port, in a thread; returns once it accepts requests."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(5)
            sock.close()
            raise AssertionError("uvicorn did not start (its log is in the captured output)")
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


API_SCOPES = [
    "tasks:read",
    "tasks:write",
    "runs:read",
    "runs:approve",
    "events:read",
    "events:publish",
]


def _agent_token(base_url: str) -> str:
    """A token of an agent holding every API scope but admin (admin routes answer it 403)."""
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=30) as admin:
        made = admin.post("/agents", json={"name": "fuzzer", "scopes": API_SCOPES})
        assert made.status_code == 201, made.text
        issued = admin.post(f"/agents/{made.json()['id']}/tokens", json={"label": "fuzz"})
        assert issued.status_code == 201, issued.text
        token: str = issued.json()["token"]
        return token


@pytest.fixture(scope="module")
async def fuzzed_database(postgres_url: str, database_pool: DatabasePool) -> AsyncIterator[str]:
    """One database for the module: a fuzz case makes the resources it needs (_use_real_ids),
    so cases need no empty database each, and one server per token saves a start per test."""
    name = await database_pool.take()
    yield with_database(postgres_url, name)
    await database_pool.give_back(name)


@pytest.fixture(scope="module", params=["admin", "agent"])
def live_api(
    request: pytest.FixtureRequest, fuzzed_database: str, redis_url: str
) -> Iterator[LiveApi]:
    # The fuzzer sends thousands of invalid tokens from one address on purpose; the limit on
    # failed authentications (tests/integration/test_auth_failures.py) would answer them 429.
    config = ApiConfig(
        fuzzed_database, redis_url, token_hash(ADMIN), secret_key=b"k" * 32, auth_failure_limit=None
    )
    app = create_app(config)
    server, thread, base_url = _serve(app)
    try:
        token = ADMIN if request.param == "admin" else _agent_token(base_url)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
            yield LiveApi(base_url, client, token)
    finally:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive(), "uvicorn did not stop within 30 s"


def problem_json_for_client_errors(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> None:
    """Every 4xx is an RFC 9457 problem document that states its own status."""
    if not 400 <= response.status_code < 500:
        return
    media_type = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    assert media_type == PROBLEM_JSON, f"a {response.status_code} answered as {media_type!r}"
    problem = response.json()
    assert isinstance(problem, dict), "a problem is a JSON object"
    assert problem.get("status") == response.status_code, "the problem's status differs"
    assert problem.get("type"), "a problem has a type"
    assert problem.get("title"), "a problem has a title"


def _use_real_ids(case: schemathesis.Case[Any], api: LiveApi) -> None:
    """Point two cases in three at freshly made resources, so handlers get past the 404.

    Which ones is derived from the generated ids, so the choice is as deterministic as they
    are. A fresh resource per case keeps cases independent: a DELETE or a cancel cannot
    starve the cases after it.
    """
    params = case.path_parameters
    if not params or zlib.crc32(repr(sorted(params.items())).encode()) % 3 == 0:
        return
    if "task_id" in params:
        params["task_id"] = api.fresh_task()
    if "agent_id" in params and api.token == ADMIN:
        params["agent_id"] = api.fresh_agent()
        if "token_id" in params:
            params["token_id"] = api.fresh_token(params["agent_id"])


# Importing an MCP server connects to the endpoint, or starts the command, that it is given:
# fuzzing it would start arbitrary programs. tests/integration/test_mcp_import_api.py covers it.
@schema.exclude(path="/tools/mcp_servers").parametrize()
def test_no_server_errors_and_problems_for_client_errors(
    case: schemathesis.Case[Any], live_api: LiveApi
) -> None:
    _use_real_ids(case, live_api)
    case.call_and_validate(
        base_url=live_api.base_url,
        headers=_live_headers(case, live_api.token),
        additional_checks=[problem_json_for_client_errors],
    )


@pytest.mark.timeout(300)
def test_stateful_sequences_keep_the_contract(live_api: LiveApi) -> None:
    """Chains of calls (create a task, then read, pause, dry-run it ...) along the links
    schemathesis infers from the document, with every check after every step."""
    machine = schema.exclude(path="/tools/mcp_servers").as_state_machine()

    class Sequences(machine):  # type: ignore[misc,valid-type]
        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            return {"base_url": live_api.base_url, "headers": _live_headers(case, live_api.token)}

        def validate_response(
            self, response: Any, case: schemathesis.Case[Any], **kwargs: Any
        ) -> None:
            super().validate_response(
                response, case, additional_checks=[problem_json_for_client_errors], **kwargs
            )

    Sequences.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=6,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )


def test_every_guarded_operation_declares_bearer_security() -> None:
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert schemes == {"bearer": {"type": "http", "scheme": "bearer", "description": ANY}}
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if path.startswith("/health") or path.startswith("/schema"):
                assert "security" not in operation, (method, path)
            else:
                assert operation["security"] == [{"bearer": []}], (method, path)
                assert "401" in operation["responses"], (method, path)


def test_routes_list_the_precondition_and_idempotency_headers_they_honour() -> None:
    def headers_of(method: str, path: str) -> set[str]:
        parameters = DOCUMENT["paths"][path][method].get("parameters", [])
        return {p["name"] for p in parameters if p["in"] == "header"}

    task_changes = [
        ("post", "/tasks"),
        ("patch", "/tasks/{task_id}"),
        ("delete", "/tasks/{task_id}"),
    ] + [
        ("post", f"/tasks/{{task_id}}/{action}")
        for action in ("pause", "resume", "snooze", "run_now", "cancel")
    ]
    for method, path in task_changes:
        assert headers_of(method, path) == {"If-Match", "Idempotency-Key"}, (method, path)
    run_decisions = [f"/runs/{{run_id}}/{d}" for d in ("cancel", "retry", "approve", "reject")]
    for path in [*run_decisions, "/events"]:
        assert headers_of("post", path) == {"Idempotency-Key"}, path
    assert headers_of("get", "/tasks/{task_id}") == set()


def test_the_fuzzed_document_is_the_served_one(live_api: LiveApi) -> None:
    served = live_api.client.get("/schema/openapi.json")
    assert served.status_code == 200
    assert served.json() == DOCUMENT
