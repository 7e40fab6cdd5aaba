"""Ordinaut's Python client: typed async and sync clients, event models, and a FastStream kit.

``ordinaut_client.kit`` and ``ordinaut_client.ingest`` need the ``faststream`` extra.
"""

from ordinaut_client._async import AsyncOrdinaut
from ordinaut_client._base import Retry, if_match_value, new_idempotency_key
from ordinaut_client._sync import Ordinaut
from ordinaut_client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    IngestRefused,
    Invalid,
    NotFound,
    OrdinautError,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    Unavailable,
    Unreachable,
)

__all__ = [
    "ApiError",
    "AsyncOrdinaut",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "IngestRefused",
    "Invalid",
    "NotFound",
    "Ordinaut",
    "OrdinautError",
    "PayloadTooLarge",
    "RateLimited",
    "Retry",
    "Unauthorized",
    "Unavailable",
    "Unreachable",
    "if_match_value",
    "new_idempotency_key",
]
