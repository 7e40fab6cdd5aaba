"""Keeps secret values out of log lines, whatever code logs them.

Every process registers the secret values it handles; a structlog processor replaces them in
each log event before it is rendered (stdlib records go through the same chain).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from domain.secrets import redact

_known: dict[str, str] = {}


def remember_secrets(secrets: Mapping[str, str]) -> None:
    """Redact these values from every log line of this process from now on."""
    _known.update(secrets)


def redact_secrets(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: secret values in any field become ``[secret:NAME]``."""
    if not _known:
        return event_dict
    return {key: redact(value, _known) for key, value in event_dict.items()}
