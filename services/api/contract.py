"""The OpenAPI document as a contract: every route's error answers, bearer security, strict bodies.

Applied once to the built app, from what each route declares (guards, parameters, body), so a
new route is documented like the others without anyone remembering to: 401/403/429 where a
scope guard runs, 404 where a path names a resource, 400/413/422 where input is parsed, 409 on
writes, each with the problem+json schema. The server then enforces what the document says
(services/api/boundary.py): Litestar converts bodies leniently ("3" for 3, 0 for a date-time).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, OpenAPI, SecurityScheme
from litestar.routes import HTTPRoute

from services.api.auth import required_scope
from services.problems.document import PROBLEM_JSON, Problem

BEARER = "bearer"
SECURITY_COMPONENTS = Components(
    security_schemes={
        BEARER: SecurityScheme(
            type="http",
            scheme="bearer",
            description="The admin token, or an agent's token (POST /agents/{agent_id}/tokens)",
        )
    }
)
_WHY = {
    400: "The body is not JSON (or is nested too deeply)",
    401: "No bearer token, or one that is not valid (or was revoked)",
    403: "The token does not hold the scope this operation needs",
    404: "Nothing with this id (or it is not the caller's)",
    409: "The resource's state or version refuses this change",
    413: "The body is larger than 1 MiB",
    422: "Invalid input: `errors` names each field and why",
    429: "Over the caller's rate limit; Retry-After says when to try again",
}
_WRITES = {"POST", "PUT", "PATCH", "DELETE"}
# Handler parameters that read no input: a body is counted on its own; the caller and the
# backend come from the request's principal and the app (services/api/calls.py).
_PARSE_NOTHING = {"data", "request", "state", "caller", "backend"}


def problem_spec(description: str) -> ResponseSpec:
    """A problem+json answer, for routes that declare a status of their own (e.g. 503)."""
    return ResponseSpec(
        data_container=Problem,
        description=description,
        media_type=PROBLEM_JSON,
        generate_examples=False,
    )


def error_codes(handler: HTTPRouteHandler, path_params: bool) -> set[int]:
    """The problem statuses a route can answer, from what it declares."""
    codes: set[int] = set()
    if required_scope(handler) is not None:
        codes |= {401, 403, 429}
    if path_params:
        codes.add(404)
    has_body = handler.parsed_data_field is not None
    if has_body:
        codes |= {400, 413, 422}
    if handler.parsed_fn_signature.parameters.keys() - _PARSE_NOTHING:
        codes.add(422)  # query or path parameters with constraints
    if required_scope(handler) is not None and handler.http_methods & _WRITES:
        codes.add(409)
    return codes


def _api_handlers(app: Litestar) -> Iterator[tuple[HTTPRoute, HTTPRouteHandler]]:
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                if handler.include_in_schema and "OPTIONS" not in handler.http_methods:
                    yield route, handler


def document(app: Litestar) -> None:
    """Declare every route's problem answers and security, fix OPTIONS, then check the result."""
    for route, handler in _api_handlers(app):
        responses = dict(handler.responses or {})
        for code in sorted(error_codes(handler, bool(route.path_parameters))):
            responses.setdefault(code, problem_spec(_WHY[code]))
        handler.responses = responses
        if required_scope(handler) is not None:
            handler.security = [{BEARER: []}]
    _fix_options_allow(app)
    _finish(app.openapi_schema, app)


def _fix_options_allow(app: Litestar) -> None:
    """Litestar 2.x answers OPTIONS with the methods of the first handler registered for a path
    (litestar issue 4169, fixed in 3.0): bind each default OPTIONS handler to its whole route."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or "OPTIONS" not in route.route_handler_map:
            continue
        handler, _ = route.route_handler_map["OPTIONS"]
        if handler.handler_name == "options_handler":
            handler._fn = route.create_options_handler(route.path).fn


def _finish(openapi: OpenAPI, app: Litestar) -> None:
    """What Litestar's generator loses: optional bodies, and every msgspec constraint (it drops
    ``ge=0``, constraints on dict values, ``forbid_unknown_fields``). Each Struct's component is
    replaced by msgspec's own JSON Schema of it, which is what the server validates with."""
    types: set[Any] = set()
    for route, handler in _api_handlers(app):
        types |= set(_structs(handler.parsed_fn_signature.return_type.annotation))
        field = handler.parsed_data_field
        if field is None:
            continue
        types |= set(_structs(field.annotation))
        if field.has_default:
            for method in handler.http_methods:
                item = (openapi.paths or {})[route.path_format]
                operation = getattr(item, method.lower(), None)
                if operation is not None and operation.request_body is not None:
                    operation.request_body.required = False
    ordered = sorted(types, key=lambda t: (t.__module__, t.__qualname__))
    _, components = msgspec.json.schema_components(
        ordered, ref_template="#/components/schemas/{name}"
    )
    schemas = openapi.components.schemas if openapi.components else {}
    for name, schema in components.items():
        schemas[name] = _Raw(schema)  # type: ignore[assignment]


class _Raw(dict[str, Any]):
    """A JSON Schema kept as msgspec wrote it (Litestar serialises a dict as it is)."""

    def to_schema(self) -> dict[str, Any]:
        return dict(self)


def _structs(annotation: Any) -> Iterator[type[msgspec.Struct]]:
    """Every Struct type reachable from ``annotation`` (fields, lists, unions)."""
    try:
        root = msgspec.inspect.type_info(annotation)
    except (TypeError, ValueError):  # not a type msgspec knows (e.g. a Response)
        return
    seen: set[int] = set()
    stack: list[msgspec.inspect.Type] = [root]
    while stack:
        info = stack.pop()
        if id(info) in seen:
            continue
        seen.add(id(info))
        if isinstance(info, msgspec.inspect.StructType):
            yield info.cls
            stack.extend(f.type for f in info.fields)
        for attr in ("types", "item_type", "key_type", "value_type"):
            found = getattr(info, attr, None)
            if isinstance(found, tuple):
                stack.extend(found)
            elif isinstance(found, msgspec.inspect.Type):
                stack.append(found)
