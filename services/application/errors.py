"""The refusals a use case raises, by kind; each adapter (HTTP, MCP) maps the kinds once.

A use case says *what* went wrong (not found, conflict, forbidden, invalid...), never how an
interface reports it. ``refusal_of`` also translates the refusals of the layers below (a
domain rule, a stale version, an unstorable value) into these kinds, so an adapter has one
table to keep.
"""

from __future__ import annotations

from typing import ClassVar

import asyncpg
import msgspec

from domain.errors import Refusal, RuleViolation
from services.store.errors import IdempotencyKeyReused, UnstorableText, VersionConflict


class FieldError(msgspec.Struct, frozen=True):
    """One invalid input: where it is and why it was refused."""

    field: str
    reason: str


class ApplicationError(Exception):
    """A use case's refusal: ``detail`` for people, ``errors`` naming the fields at fault.

    ``title`` names the refusal (each kind has one; a few say more, e.g. "Version conflict").
    """

    title: ClassVar[str] = "Request refused"

    def __init__(
        self, detail: str, errors: list[FieldError] | None = None, *, title: str | None = None
    ) -> None:
        super().__init__(detail)
        self.detail, self.errors = detail, errors
        if title is not None:
            self.title = title  # type: ignore[misc]  # an instance may name itself more precisely


class NotFound(ApplicationError):
    """No such thing, or not one the caller may see (ids reveal nothing)."""

    title = "Not found"


class Conflict(ApplicationError):
    """The command does not fit the current state of what it acts on."""

    title = "Conflict"


class VersionMismatch(Conflict):
    """The caller expected another version (If-Match), or another writer got there first."""

    title = "Version conflict"


class Forbidden(ApplicationError):
    """The caller's scopes do not cover the command."""

    title = "Forbidden"


class Invalid(ApplicationError):
    """Input a rule refuses; ``errors`` name the fields."""

    title = "Invalid request"


class KeyReused(Invalid):
    """An idempotency key reused for a different request."""

    title = "Idempotency key reused"


class Unavailable(ApplicationError):
    """A capability this deployment does not have (e.g. no secret key configured)."""

    title = "Service unavailable"


class UpstreamFailed(ApplicationError):
    """A server the command depends on (an MCP server being imported) failed."""

    title = "Bad gateway"


def invalid(field: str, reason: str) -> Invalid:
    """Input refused for one field: the detail names it too."""
    return Invalid(f"{field}: {reason}", [FieldError(field, reason)])


_BY_REFUSAL: dict[Refusal, type[ApplicationError]] = {
    Refusal.INVALID: Invalid,
    Refusal.CONFLICT: Conflict,
    Refusal.FORBIDDEN: Forbidden,
}
# Unique indexes a command can run into when another one changed data meanwhile.
_UNIQUE_FIELDS = {"task_owner_key": ("key", "another of your tasks already has this key")}


def refusal_of(exc: BaseException) -> ApplicationError | None:
    """``exc`` as an application refusal, if it is one (None: an unexpected failure)."""
    if isinstance(exc, ApplicationError):
        return exc
    if isinstance(exc, RuleViolation):
        return _BY_REFUSAL[exc.kind](str(exc), [FieldError(exc.field, exc.reason)])
    if isinstance(exc, VersionConflict):
        return VersionMismatch(str(exc))
    if isinstance(exc, IdempotencyKeyReused):
        return KeyReused(str(exc))
    if isinstance(exc, UnstorableText):
        return Invalid(str(exc))
    if isinstance(exc, asyncpg.DataError):
        # Every value in our SQL is a parameter, so a value PostgreSQL refuses came from input.
        return Invalid("a value in the request is not valid")
    if isinstance(exc, asyncpg.UniqueViolationError):
        known = _UNIQUE_FIELDS.get(exc.constraint_name or "")
        return None if known is None else Conflict(f"{known[0]}: {known[1]}", [FieldError(*known)])
    return None
