"""Every kind of refusal has one HTTP status and one MCP problem status, and they agree."""

from __future__ import annotations

import asyncpg
import pytest

from domain.errors import Refusal, RuleViolation
from services.api import problems
from services.api.calls import STATUS_OF as ANSWER_STATUS
from services.application import errors
from services.application.context import Answer
from services.application.errors import ApplicationError, FieldError, refusal_of
from services.mcp import errors as mcp_errors
from services.store.errors import IdempotencyKeyReused, StreamBusy, UnstorableText, VersionConflict

EXPECTED = {
    errors.NotFound: (404, "Not found"),
    errors.Conflict: (409, "Conflict"),
    errors.VersionMismatch: (409, "Version conflict"),
    errors.Forbidden: (403, "Forbidden"),
    errors.Invalid: (422, "Invalid request"),
    errors.KeyReused: (422, "Idempotency key reused"),
    errors.Unavailable: (503, "Service unavailable"),
    errors.UpstreamFailed: (502, "Bad gateway"),
}


def _kinds(base: type[ApplicationError]) -> set[type[ApplicationError]]:
    found = set()
    for kind in base.__subclasses__():
        found |= {kind, *_kinds(kind)}
    return found


def test_every_kind_of_refusal_is_known_to_this_test() -> None:
    assert _kinds(ApplicationError) == set(EXPECTED)


@pytest.mark.parametrize("kind", sorted(EXPECTED, key=lambda kind: kind.__name__))
def test_each_kind_maps_to_its_status_over_http_and_mcp(kind: type[ApplicationError]) -> None:
    status, title = EXPECTED[kind]
    refusal = kind("what went wrong")
    assert problems.status_of(refusal) == status
    assert mcp_errors.status_of(refusal) == status
    assert refusal.title == title


def test_an_mcp_problem_carries_the_status_title_and_fields() -> None:
    refusal = errors.invalid("key", "is too long")
    problem = mcp_errors.problem_of(refusal, "create_task", "c-1")
    assert (problem.status, problem.title, problem.detail) == (
        422,
        "Invalid request",
        "key: is too long",
    )
    assert problem.errors == [FieldError("key", "is too long")]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (Refusal.INVALID, errors.Invalid),
        (Refusal.CONFLICT, errors.Conflict),
        (Refusal.FORBIDDEN, errors.Forbidden),
    ],
)
def test_every_rule_violation_kind_becomes_a_refusal_naming_its_field(
    kind: Refusal, expected: type[ApplicationError]
) -> None:
    refusal = refusal_of(RuleViolation("schedule_expr", "is not a cron expression", kind))
    assert type(refusal) is expected
    assert refusal.detail == "schedule_expr: is not a cron expression"
    assert refusal.errors == [FieldError("schedule_expr", "is not a cron expression")]


def test_the_stores_refusals_keep_their_kinds() -> None:
    assert type(refusal_of(VersionConflict("task-1", 1, 2))) is errors.VersionMismatch
    assert type(refusal_of(IdempotencyKeyReused("k"))) is errors.KeyReused
    assert type(refusal_of(UnstorableText())) is errors.Invalid
    assert type(refusal_of(asyncpg.DataError("bad"))) is errors.Invalid


def test_a_taken_unique_key_is_a_conflict_naming_it_and_other_failures_are_not_refusals() -> None:
    taken = asyncpg.UniqueViolationError("duplicate")
    taken.constraint_name = "task_owner_key"
    refusal = refusal_of(taken)
    assert type(refusal) is errors.Conflict
    assert refusal.errors is not None
    assert refusal.errors[0].field == "key"
    assert refusal_of(asyncpg.UniqueViolationError("duplicate")) is None
    assert refusal_of(StreamBusy(["task-1"])) is None
    assert refusal_of(RuntimeError("boom")) is None


def test_every_answer_has_an_http_status() -> None:
    assert ANSWER_STATUS == {
        Answer.DONE: 200,
        Answer.CREATED: 201,
        Answer.ACCEPTED: 202,
        Answer.DELETED: 204,
    }


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"topic": "t", "payload": {"a": float("inf")}}, "payload.a"),
        ({"a": [1, {"b": float("nan")}], "z": float("-inf")}, "a[1].b"),  # the first one
        ({"count": float("-inf")}, "count"),
        ({"a": 1e308, "b": 10**400, "c": [None, True, "NaN"]}, None),
    ],
)
def test_an_mcp_argument_json_has_no_number_for_is_named(
    arguments: dict[str, object], field: str | None
) -> None:
    refused = mcp_errors.non_finite(arguments)
    if field is None:
        assert refused is None
        return
    assert refused is not None
    assert (refused.status, refused.detail) == (422, f"{field}: not a finite number")
    assert refused.errors == [FieldError(field, "not a finite number")]
