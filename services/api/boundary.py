"""What every route refuses before its handler runs (the app's ``before_request``), naming the
field: a JSON body only a lenient conversion would accept, text PostgreSQL cannot store (NUL)
in the URL or the body, and date-times outside the range any reader can hold.

Refused here rather than when the database refuses them, so the answer says which field is at
fault (services/application/errors.py keeps "a value in the request is not valid" as the
last resort for anything that gets past).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.exceptions import ValidationException
from litestar.params import BodyKwarg

from services.application.errors import FieldError, NotFound
from services.application.inputs import NUL, NUL_REASON, instant_errors, nul_errors, refusal


async def check_input(request: Request[Any, Any, Any]) -> None:
    """Refuse what no handler should see (a 404 for a path naming nothing, else a 422)."""
    _refuse_nul_in_path(request)
    _refuse_nul_in_query(request)
    await _check_json_body(request)


def _refuse_nul_in_path(request: Request[Any, Any, Any]) -> None:
    """An id or name with NUL names nothing that could be stored: not found, as for any other
    id that names nothing (ids reveal nothing)."""
    if NUL not in request.scope["path"]:
        return
    for name, value in request.path_params.items():
        if isinstance(value, str) and NUL in value:
            raise NotFound(f"{name}: nothing has a name with the NUL character (\\u0000)")


def _refuse_nul_in_query(request: Request[Any, Any, Any]) -> None:
    if b"%00" not in request.scope["query_string"]:  # NUL reaches a query only escaped
        return
    names = [name for name, value in request.query_params.multi_items() if NUL in value]
    if names:
        raise refusal([FieldError(name, NUL_REASON) for name in dict.fromkeys(names)])


async def _check_json_body(request: Request[Any, Any, Any]) -> None:
    """Refuse a JSON body whose values only a lenient conversion would accept, so the server
    accepts exactly what the document describes; then text with NUL (except where the body's
    type allows it) and date-times out of range."""
    field = request.route_handler.parsed_data_field
    if field is None or not isinstance(field.kwarg_definition, BodyKwarg):
        return
    if field.kwarg_definition.media_type != RequestEncodingType.JSON:
        return
    body = await request.body()
    if not body.strip():
        return  # Litestar answers a missing body (400) or uses the default
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return  # malformed JSON: Litestar's own parse reports it as a 400
    try:
        converted = msgspec.convert(_integral(decoded), field.annotation, strict=True)
    except msgspec.ValidationError as exc:
        raise ValidationException(
            detail="Validation failed",
            extra=[{"message": str(exc), "key": "data", "source": "body"}],
        ) from None
    # JSON carries NUL only escaped, so most bodies skip the walk.
    errors = nul_errors(decoded, field.annotation) if b"\\u0000" in body else []
    errors += instant_errors(converted)
    if errors:
        raise refusal(errors)


def _integral(value: Any) -> Any:
    """JSON Schema counts 3.0 as an integer; msgspec's strict mode does not: make it 3."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, list):
        return [_integral(item) for item in value]
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    return value
