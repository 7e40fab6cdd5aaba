"""The Python client (clients/python) cannot drift from the server: its models, methods and
event types are compared with the served OpenAPI document and domain/events.py."""

from __future__ import annotations

import ast
import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from domain.events import EVENT_TYPES
from services.api.app import ApiConfig, create_app
from services.api.routes import asyncapi
from tests.client_contract import (
    all_differences,
    compare_events,
    compare_models,
    compare_operations,
)

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "python"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The document served at /schema/openapi.json (test_schemathesis.py proves they agree)."""
    config = ApiConfig("postgresql://unused@127.0.0.1/unused", "redis://127.0.0.1", b"unused")
    schema: dict[str, Any] = create_app(config).openapi_schema.to_schema()
    return schema


def test_the_client_matches_the_openapi_document_and_the_event_types(
    document: dict[str, Any],
) -> None:
    assert all_differences(document, EVENT_TYPES) == [], (
        "regenerate: clients/python/scripts/generate.sh"
    )


def test_a_changed_body_or_route_without_the_client_is_caught(document: dict[str, Any]) -> None:
    changed = copy.deepcopy(document)
    body = changed["components"]["schemas"]["TaskBody"]
    body["properties"]["owner_note"] = {"type": "string"}
    body["properties"]["priority"] = {"type": "string"}
    changed["paths"]["/runs/{run_id}/pause"] = {"post": {"responses": {}}}
    changed["paths"]["/runs/{run_id}/approve"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"] = {"$ref": "#/components/schemas/Resume"}
    problems = compare_models(changed) + compare_operations(changed)
    assert "TaskBody.owner_note: documented by the server, missing in the client" in problems
    assert any(p.startswith("TaskBody.priority: server ['string']") for p in problems)
    assert "AsyncOrdinaut: no method for POST /runs/{run_id}/pause" in problems
    assert "Ordinaut: no method for POST /runs/{run_id}/pause" in problems
    assert any(p.startswith("POST /runs/{run_id}/approve: body Resume") for p in problems)


def test_a_changed_event_type_without_the_client_is_caught() -> None:
    class RunDead(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="run.dead"):
        run_id: str
        attempt: int
        error: str
        reason: str | None = None
        hint: str  # a new required field

    class RunPaused(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="run.paused"):
        run_id: str

    changed = dict(EVENT_TYPES) | {"run.dead": RunDead, "run.paused": RunPaused}
    problems = compare_events(changed)
    assert "run.paused: an event type the client does not model" in problems
    assert "run.dead.hint: documented by the server, missing in the client" in problems


def test_the_sync_client_is_generated_from_the_async_one() -> None:
    check = [sys.executable, str(CLIENT / "scripts" / "unasync.py"), "--check"]
    assert subprocess.run(check, check=False).returncode == 0, (
        "run clients/python/scripts/unasync.py"
    )


def test_the_served_asyncapi_document_is_the_one_the_kit_generates() -> None:
    from ordinaut_client.kit import asyncapi_document

    committed = json.loads(asyncapi.DOCUMENT.read_text())
    assert committed == asyncapi_document(), (
        "regenerate: python -m ordinaut_client.kit > services/api/asyncapi.json"
    )
    channels = committed["channels"]
    assert {c["address"] for c in channels.values()} == {"ordinaut:events", "ordinaut:ingest"}
    with TestClient(Litestar(asyncapi.ROUTES)) as client:
        response = client.get("/schema/asyncapi.json")
    assert response.status_code == 200
    assert response.json() == committed


def test_the_client_distribution_does_not_depend_on_the_server() -> None:
    import tomllib

    project = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]
    names = [d.split(">")[0].split("[")[0] for d in project["dependencies"]]
    assert sorted(names) == ["httpx", "pydantic", "typing-extensions"]
    imported = set()
    for path in (CLIENT / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"ordinaut_client"}
    # faststream and redis (which faststream[redis] brings) only in the optional kit modules
    assert third_party == {"httpx", "pydantic", "typing_extensions", "faststream", "redis"}
