"""The AsyncAPI document of the streams, beside the OpenAPI one (no authentication).

FastStream generates it from the client's subscriber kit (clients/python); the server serves the
committed file so it never imports FastStream. Regenerate with
``python -m ordinaut_client.kit > services/api/asyncapi.json`` (a test compares them).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from litestar import Response, get

DOCUMENT = Path(__file__).resolve().parents[1] / "asyncapi.json"


@get(
    "/schema/asyncapi.json",
    tags=["events"],
    summary="AsyncAPI document of the Redis streams",
    include_in_schema=True,
    media_type="application/json",
)
async def asyncapi_document() -> Response[dict[str, Any]]:
    """`ordinaut:events` (every recorded event, typed by `type`) and `ordinaut:ingest`."""
    return Response(_document(), media_type="application/json")


@functools.cache
def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DOCUMENT.read_text())
    return document


ROUTES = [asyncapi_document]
