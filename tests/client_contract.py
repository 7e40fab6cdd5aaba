"""Does the Python client (clients/python) still match the server? The differences, as text.

Shared by the unit test (on the app's document and domain/events.py) and the e2e test (on the
document a running `ordinaut up` serves). Types are compared as sets of JSON kinds
(``string``, ``null``, ``ref:TaskView``, ``array[...]``...): every kind the server allows must
be one the client's model accepts, and the required fields must be the same.
"""

from __future__ import annotations

import inspect
from typing import Any

from pydantic import BaseModel

from ordinaut_client import AsyncOrdinaut, Ordinaut
from ordinaut_client import models as client_models
from ordinaut_client._base import Operation
from ordinaut_client.events import EVENT_MODELS

_METHODS = ("get", "post", "put", "patch", "delete")


def kinds(schema: dict[str, Any]) -> frozenset[str]:
    """The JSON kinds a schema allows (constraints aside)."""
    if not schema:
        return frozenset({"any"})
    if "$ref" in schema:
        return frozenset({"ref:" + schema["$ref"].rsplit("/", 1)[-1]})
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return frozenset().union(*(kinds(option) for option in schema[key]))
    values = schema.get("enum", [schema["const"]] if "const" in schema else None)
    if values is not None:
        return frozenset(f"={value}" for value in values)
    found: set[str] = set()
    names = schema.get("type", [])
    for name in [names] if isinstance(names, str) else names:
        if name == "array":
            found.add(f"array[{','.join(sorted(kinds(schema.get('items', {}))))}]")
        elif name == "object" and isinstance(schema.get("additionalProperties"), dict):
            found.add(f"object[{','.join(sorted(kinds(schema['additionalProperties'])))}]")
        else:
            found.add(name)
    return frozenset(found) or frozenset({"any"})


def _accepts(client: frozenset[str], server: frozenset[str]) -> bool:
    if "any" in client:
        return True
    widened = set(client) | ({"integer"} if "number" in client else set())
    return server <= widened


def compare_schema(name: str, server: dict[str, Any], client: dict[str, Any]) -> list[str]:
    """Differences between one server schema and the client's model of it."""
    problems: list[str] = []
    theirs, ours = server.get("properties", {}), client.get("properties", {})
    for field in sorted(theirs.keys() - ours.keys()):
        problems.append(f"{name}.{field}: documented by the server, missing in the client")
    for field in sorted(ours.keys() - theirs.keys()):
        problems.append(f"{name}.{field}: in the client, not documented by the server")
    for field in sorted(theirs.keys() & ours.keys()):
        server_kinds, client_kinds = kinds(theirs[field]), kinds(ours[field])
        if not _accepts(client_kinds, server_kinds):
            problems.append(
                f"{name}.{field}: server {sorted(server_kinds)}, client {sorted(client_kinds)}"
            )
    if set(server.get("required", [])) != set(client.get("required", [])):
        problems.append(
            f"{name}: required {sorted(server.get('required', []))} on the server, "
            f"{sorted(client.get('required', []))} in the client"
        )
    return problems


def _model_schema(model: type[BaseModel], template: str) -> dict[str, Any]:
    """The model's JSON Schema, with type aliases (defs that are not models) inlined."""
    schema = model.model_json_schema(ref_template=template)
    aliases = {
        name: definition
        for name, definition in schema.get("$defs", {}).items()
        if "properties" not in definition
    }
    inlined: dict[str, Any] = _inline(schema, aliases)
    return inlined


def _inline(node: Any, aliases: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(item, aliases) for item in node]
    if not isinstance(node, dict):
        return node
    target = node.get("$ref", "").rsplit("/", 1)[-1]
    if target in aliases:
        return _inline(aliases[target], aliases)
    return {key: _inline(value, aliases) for key, value in node.items()}


def compare_models(document: dict[str, Any]) -> list[str]:
    """Every component schema of the OpenAPI document against models.py, both ways."""
    problems: list[str] = []
    schemas: dict[str, Any] = document["components"]["schemas"]
    module = client_models.__name__
    ours = {
        name: cls
        for name, cls in vars(client_models).items()
        if inspect.isclass(cls) and issubclass(cls, BaseModel) and cls.__module__ == module
    }
    for name in sorted(schemas.keys() - ours.keys()):
        problems.append(f"{name}: documented by the server, no model in the client")
    for name in sorted(ours.keys() - schemas.keys()):
        problems.append(f"{name}: a client model the server does not document")
    for name in sorted(schemas.keys() & ours.keys()):
        client = _model_schema(ours[name], "#/components/schemas/{model}")
        problems += compare_schema(name, schemas[name], client)
    return problems


def _schema_name(content: dict[str, Any] | None) -> str | None:
    """The component a request or response body refers to (through a nullable oneOf too)."""
    if not content:
        return None
    schema = next(iter(content.values())).get("schema", {})
    refs = [k for k in kinds(schema) if k.startswith("ref:")]
    return refs[0][4:] if refs else None


def client_operations(client: type[Any]) -> dict[tuple[str, str], Operation]:
    found = {}
    for _, method in inspect.getmembers(client, inspect.isfunction):
        marked = getattr(method, "__ordinaut_operation__", None)
        if isinstance(marked, Operation):
            found[(marked.method, marked.path)] = marked
    return found


def compare_operations(document: dict[str, Any]) -> list[str]:
    """Every operation has a method in both clients, with the body and response documented."""
    problems: list[str] = []
    documented: dict[tuple[str, str], dict[str, Any]] = {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in _METHODS
    }
    for client in (AsyncOrdinaut, Ordinaut):
        ours = client_operations(client)
        for key in sorted(documented.keys() - ours.keys()):
            problems.append(f"{client.__name__}: no method for {' '.join(key)}")
        for key in sorted(ours.keys() - documented.keys()):
            problems.append(f"{client.__name__}: {' '.join(key)} is not documented")
        for key in sorted(documented.keys() & ours.keys()):
            operation, mine = documented[key], ours[key]
            body = _schema_name(operation.get("requestBody", {}).get("content"))
            if body != (mine.body.__name__ if mine.body else None):
                problems.append(f"{' '.join(key)}: body {body}, client sends {mine.body}")
            answers = [
                _schema_name(answer.get("content"))
                for status, answer in operation["responses"].items()
                if status.startswith("2")
            ]
            response = mine.response.__name__ if mine.response else None
            if response not in answers:
                problems.append(f"{' '.join(key)}: answers {answers}, client reads {response}")
    return problems


def compare_events(event_types: dict[str, type[Any]]) -> list[str]:
    """domain/events.py's structs against the client's event models, by ``type`` tag."""
    import msgspec

    problems: list[str] = []
    for tag in sorted(event_types.keys() - EVENT_MODELS.keys()):
        problems.append(f"{tag}: an event type the client does not model")
    for tag in sorted(EVENT_MODELS.keys() - event_types.keys()):
        problems.append(f"{tag}: a client event model the server does not record")
    shared = sorted(event_types.keys() & EVENT_MODELS.keys())
    (*_, components) = msgspec.json.schema_components(
        [event_types[tag] for tag in shared], ref_template="#/$defs/{name}"
    )
    for tag in shared:
        struct, model = event_types[tag], EVENT_MODELS[tag]
        client = _model_schema(model, "#/$defs/{model}")
        problems += compare_schema(tag, components[struct.__name__], client)
        for nested, schema in components.items():
            if nested in client.get("$defs", {}):
                problems += compare_schema(f"{tag}/{nested}", schema, client["$defs"][nested])
    return problems


def all_differences(document: dict[str, Any], event_types: dict[str, type[Any]]) -> list[str]:
    return compare_models(document) + compare_operations(document) + compare_events(event_types)
