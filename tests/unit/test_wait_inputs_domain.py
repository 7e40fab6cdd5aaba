"""A wait's filter and a sleep's instant: checked when the task is created, rendered safely."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jmespath
import pytest

from domain.errors import RuleViolation
from domain.events import TaskDefinition
from domain.pipeline import PipelineError, validate_payload
from domain.templates import TemplateError
from domain.tools import BUILTIN_TOOLS
from domain.wait_filters import check_filter, compile_filter, render_filter
from domain.waits import matches, sleep_until
from services.application.dry_run import dry_run

NOW = datetime(2030, 1, 1, 9, tzinfo=UTC)
FIELD = "payload.pipeline[0].with.filter"


def rendered(text: str, **params: Any) -> str:
    check_filter(text, FIELD)
    return render_filter(text, {"params": params}, now=NOW, field=FIELD)


def resumes(text: str, payload: Any, **params: Any) -> bool:
    wait = {"topic": "t", "filter": rendered(text, **params), "scope": {"params": params}}
    event = {"event_id": "e", "topic": "t", "payload": payload}
    return matches(wait, "admin", "admin", event, NOW)


def test_a_value_cannot_turn_the_filter_into_another_expression() -> None:
    hijack = "zz' || `true` || 'a"
    text = rendered("event.payload.id == '${params.id}'", id=hijack)
    assert text == "event.payload.id == 'zz\\' || `true` || \\'a'"
    assert jmespath.compile(text).parsed["children"][1] == {
        "type": "literal",
        "value": hijack,
        "children": [],
    }
    assert not resumes("event.payload.id == '${params.id}'", {"id": "other"}, id=hijack)
    assert resumes("event.payload.id == '${params.id}'", {"id": hijack}, id=hijack)


@pytest.mark.parametrize(
    ("text", "params", "expected"),
    [
        (
            "event.payload.id == '${params.id}'",
            {"id": "O'Brien"},
            "event.payload.id == 'O\\'Brien'",
        ),
        ("event.payload.id == 'm-${params.n}'", {"n": 3}, "event.payload.id == 'm-3'"),
        # jmespath keeps \\ in a raw string as two backslashes: a JSON literal says it exactly
        ("event.payload.p == '${params.p}'", {"p": "C:\\"}, 'event.payload.p == `"C:\\\\"`'),
        ("event.payload.n == ${params.n}", {"n": 3}, "event.payload.n == `3`"),
        (
            "${params.o} == event.payload.o",
            {"o": {"k": "`"}},
            '`{"k":"\\u0060"}` == event.payload.o',
        ),
        ("event.payload.id == 'a\\'b ${params.s}'", {"s": "c"}, "event.payload.id == 'a\\'b c'"),
        ("event.payload.id == 'lit $${x}'", {}, "event.payload.id == 'lit ${x}'"),
    ],
)
def test_values_become_literals(text: str, params: dict[str, Any], expected: str) -> None:
    assert rendered(text, **params) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("event.payload.id == ", "event.payload.id ==: invalid JMESPath: incomplete expression"),
        ("event.payload.id == ${params.id} ||", "(each ${...} read as one literal value)"),
        ("shout(event.payload.id)", "unknown function shout()"),
        ("${params.filter}", "a filter cannot be one template"),
        ('event.payload."${params.key}" == `1`', 'a template cannot stand inside "..."'),
        ("event.payload.n == `${params.n}`", "a template cannot stand inside `...`"),
        ("event.payload.id == 'a\\${params.id}'", "a backslash cannot come right before a ${...}"),
        ("event.payload.id == 'open", "a ' literal is not closed"),
    ],
)
def test_a_filter_that_could_not_compile_is_refused_naming_its_field(
    text: str, reason: str
) -> None:
    step = {
        "id": "w",
        "uses": "orchestrator.wait_for_event",
        "with": {"topic": "t", "filter": text},
    }
    with pytest.raises(PipelineError) as refused:
        validate_payload({"pipeline": [step], "params": {}})
    assert refused.value.field == FIELD
    assert reason in refused.value.reason


def test_a_parse_error_points_at_the_column_the_author_wrote() -> None:
    with pytest.raises(TemplateError) as refused:
        check_filter("event.payload.id == '${params.id}' && ]", FIELD)
    assert "at column 38" in refused.value.reason  # the ], as written


def test_a_rendered_filter_is_compiled_before_a_run_waits_on_it() -> None:
    compile_filter("event.payload.id == 'x'", "filter")
    with pytest.raises(TemplateError, match="invalid JMESPath"):
        compile_filter("event.payload.id == ", "filter")


async def test_a_wait_whose_filter_cannot_compile_fails_its_step() -> None:
    # A task recorded before filters were checked when created: its run must not wait for ever.
    step = {
        "id": "w",
        "uses": "orchestrator.wait_for_event",
        "with": {"topic": "t", "filter": "event.payload.id == "},
    }
    definition = TaskDefinition(
        title="t", schedule_kind="cron", schedule_expr="0 9 * * *", payload={"pipeline": [step]}
    )

    async def find(address: str) -> Any:
        return BUILTIN_TOOLS.get(address)

    report = await dry_run("t", "t", definition, "admin", find)
    assert not report.ok
    (failed,) = report.steps
    assert failed.status == "failed"
    assert failed.error == "filter: invalid JMESPath: incomplete expression"


def sleep(options: dict[str, Any], *, body: bool = False) -> dict[str, Any]:
    step = {"id": "nap", "uses": "orchestrator.sleep", "with": options}
    if body:
        step = {
            "id": "each",
            "uses": "pipeline.foreach",
            "with": {"items_path": "params.xs", "body": [step]},
        }
    return {"pipeline": [step], "params": {"xs": []}}


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        (sleep({"until": "yesterday"}), "with.until", "'yesterday' is not an ISO-8601 instant"),
        (sleep({"until": "2030-01-02T09:00:00"}), "with.until", "has no UTC offset"),
        (sleep({"until": "2031-01-02T09:00:00Z"}), "with.until", "is more than a year away"),
        (sleep({"until": "tomorrow"}, body=True), "with.body[0].with.until", "not an ISO-8601"),
        (sleep({"seconds": -1}), "with.seconds", "less than the minimum of 0"),
        (sleep({"seconds": 31_536_001}), "with.seconds", "greater than the maximum"),
        (sleep({"seconds": "5"}), "with.seconds", "is not of type 'number'"),
    ],
)
def test_a_literal_sleep_that_would_fail_is_refused_naming_its_field(
    payload: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(PipelineError) as refused:
        validate_payload(payload, now=NOW)
    assert refused.value.field == f"payload.pipeline[0].{field}"
    assert reason in refused.value.reason


@pytest.mark.parametrize(
    "options",
    [
        {"until": "2030-12-31T09:00:00+00:00"},  # within a year
        {"until": "2020-01-01T00:00:00Z"},  # past: wakes at once
        {"until": "${params.when}"},  # checked when rendered
        {"seconds": 0},
    ],
)
def test_a_literal_sleep_that_can_run_is_accepted(options: dict[str, Any]) -> None:
    validate_payload(sleep(options), now=NOW)


def test_sleep_until_reads_instants_and_wall_times_and_refuses_the_rest() -> None:
    zone = ZoneInfo("Europe/Chisinau")
    assert sleep_until({"seconds": 90}, zone, NOW) == NOW + timedelta(seconds=90)
    assert sleep_until({"until": "2030-01-01T12:00:00+02:00"}, zone, NOW) == NOW + timedelta(
        hours=1
    )
    assert sleep_until({"until": "2030-01-01T12:00:00"}, zone, NOW) == NOW + timedelta(hours=1)
    assert sleep_until({"until": "2001-01-01T00:00:00Z"}, zone, NOW) == NOW
    for until, reason in (("soon", "not an ISO-8601"), ("2099-01-01T00:00:00Z", "a year away")):
        with pytest.raises(RuleViolation, match=reason) as refused:
            sleep_until({"until": until}, zone, NOW)
        assert refused.value.field == "until"
