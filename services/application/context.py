"""Who calls an operation and what it runs against, whichever interface the call came in by."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from domain.envelope import EventMeta
from domain.limits import WorkLimits
from projections.base import ProjectionSet
from services.application.errors import FieldError, VersionMismatch, invalid
from services.application.principal import Principal
from services.channels.work import Announcer

# If-Match: `*`, or a task version as its ETag ("7") or bare (7). Spaces and tabs only (HTTP
# strips them around a header value), and digits bounded so any value parses as an int. A weak
# tag (W/"7") is well-formed but never matches: If-Match compares strongly (RFC 9110, 13.1.1).
VERSION_PATTERN = r'^[ \t]*(\*|(W/)?"?([0-9]{1,18})"?)[ \t]*$'
_VERSION = re.compile(VERSION_PATTERN)
# An idempotency key, in a header or a body alike: 1 to 200 printable ASCII characters. A header
# carries no charset (RFC 9110 reads other octets as opaque, Litestar as latin-1), so a UTF-8
# `é` would be stored as `Ã©` and never match the same key sent in a JSON body: refused instead.
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7E]+$"
IDEMPOTENCY_KEY_MAX = 200


@dataclass(frozen=True)
class Backend:
    """The store an operation reads and appends to, and the announcer that wakes workers."""

    pool: Any
    projections: ProjectionSet
    announcer: Announcer | None = None
    # Programs `shell.exec` steps may run (ORDINAUT_SHELL_ALLOW); checked when a task is set.
    shell_allow: tuple[str, ...] = ()
    # What one run may do (ORDINAUT_FOREACH_MAX_ITEMS...): checked when a task is set or dry-run.
    limits: WorkLimits = field(default_factory=WorkLimits)

    async def announce(self, run_ids: list[str]) -> None:
        """Wake workers for these runs (best effort: they poll anyway)."""
        if self.announcer is not None and run_ids:
            await self.announcer.announce(run_ids)


@dataclass(frozen=True)
class Caller:
    """One call: its principal, correlation id, optional idempotency key and precondition.

    ``fingerprint`` identifies the request's content, so an idempotency key reused for a
    different request is refused; ``if_match`` is the task version the caller expects.
    """

    principal: Principal
    correlation_id: str
    idempotency_key: str | None = None
    fingerprint: str = ""
    if_match: str | None = None

    def meta(self) -> EventMeta:
        """The metadata of every event this call appends."""
        return EventMeta(
            actor=self.principal.actor,
            correlation_id=self.correlation_id,
            idempotency_key=self.idempotency_key,
        )

    def check_version(self, version: int) -> None:
        """Refuse (a conflict) if the caller expected another version; invalid if it named none."""
        if self.if_match is None or self.if_match.strip() == "*":
            return
        match = _VERSION.match(self.if_match)
        if match is None or match.group(3) is None:
            raise invalid("If-Match", "must be the task's version")
        if match.group(2) is not None:
            reason = f'a weak tag never matches; send the ETag as given ("{version}")'
            raise VersionMismatch(f"If-Match: {reason}", [FieldError("If-Match", reason)])
        if int(match.group(3)) != version:
            raise VersionMismatch(f"the task is at version {version}")


class Answer(Enum):
    """What a command did, which each interface reports its own way."""

    DONE = "done"  # changed (or already as asked): the body is the thing now
    CREATED = "created"  # a new thing, the body
    ACCEPTED = "accepted"  # queued: the work happens later
    DELETED = "deleted"  # gone from reads: no body


@dataclass(frozen=True)
class OperationResult:
    """An operation's answer: what it did, and its body."""

    answer: Answer
    body: Any
