"""Template rendering as a pipeline author sees it: types, missing data, time, conditions, loops."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from domain.errors import Refusal
from domain.pipeline import PipelineError, validate_payload
from domain.templates import (
    TemplateError,
    condition_holds,
    render,
    select_items,
    template_expressions,
)

CHISINAU = ZoneInfo("Europe/Chisinau")
NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 23, 8, 30, tzinfo=CHISINAU)
CONTEXT: dict[str, Any] = {
    "params": {"city": "Chisinau", "limit": 3, "quiet": None, "tags": ["a", "b"], "on": True},
    "steps": {
        "weather": {"temp": 21.5, "summary": {"sky": "clear", "wind": 4}, "alerts": []},
        "calendar": {"items": [{"title": "Standup", "to": "ana@example.com", "urgent": True}]},
        "odd-name": {"v": 1},
    },
    "event": None,
    "task": {"id": "t-1", "timezone": "Europe/Chisinau"},
    "run": {"id": "r-1"},
}


def rendered(value: Any, context: dict[str, Any] | None = None, now: datetime = NOW) -> Any:
    return render(value, CONTEXT if context is None else context, now=now)


def refusal(value: Any, context: dict[str, Any] | None = None) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        rendered(value, context)
    return caught.value


# --- types --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("${steps.weather.temp}", 21.5),
        ("${params.limit}", 3),
        ("${params.on}", True),
        ("${params.quiet}", None),
        ("${params.tags}", ["a", "b"]),
        ("${steps.weather.summary}", {"sky": "clear", "wind": 4}),
        ("${params.city}", "Chisinau"),
        ("${ params.limit }", 3),
        ('${steps."odd-name".v}', 1),
        ("${params.tags[-1]}", "b"),
        ("${length(params.tags)}", 2),
        ("${ {city: params.city, n: params.limit} }", {"city": "Chisinau", "n": 3}),
        ('${`{"nested": {"k": [1]}}`}', {"nested": {"k": [1]}}),
        ("${steps.calendar.items[?urgent].title}", ["Standup"]),
    ],
)
def test_a_whole_string_template_keeps_the_json_type(template: str, value: Any) -> None:
    result = rendered(template)
    assert result == value
    assert type(result) is type(value)


def test_inside_text_values_are_written_as_json_and_strings_as_they_are() -> None:
    text = "${params.city}: ${steps.weather.temp} C, ${params.on}, ${params.quiet}, ${params.tags}"
    assert rendered(text) == 'Chisinau: 21.5 C, true, null, ["a","b"]'
    assert rendered("sky ${steps.weather.summary}") == 'sky {"sky":"clear","wind":4}'
    assert rendered("${params.city}${params.limit}") == "Chisinau3"
    assert rendered(" ${params.limit}") == " 3"  # surrounding spaces make it text


def test_non_ascii_text_is_kept_readable() -> None:
    context = {**CONTEXT, "params": {"greeting": {"ro": "Bună ziua"}}}
    assert rendered("${params.greeting}!", context) == '{"ro":"Bună ziua"}!'


def test_nested_inputs_are_rendered_and_keys_are_not() -> None:
    options = {
        "${params.city}": "${params.limit}",
        "to": [{"address": "${steps.calendar.items[0].to}"}, 7, None, False],
        "note": "no templates here",
    }
    assert rendered(options) == {
        "${params.city}": 3,
        "to": [{"address": "ana@example.com"}, 7, None, False],
        "note": "no templates here",
    }


def test_strings_without_templates_come_back_as_the_same_object() -> None:
    text = "price $5, {braces} and $ signs"
    assert rendered(text) is text
    assert rendered(42) == 42


def test_dollar_dollar_brace_is_a_literal_template_opening() -> None:
    assert rendered("$${params.city} is ${params.city}") == "${params.city} is Chisinau"
    assert rendered("$${") == "${"
    assert rendered("${'$'}${params.limit}") == "$3"


# --- missing data -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        (
            "${steps.calendar.events}",
            "${steps.calendar.events}: steps.calendar has no field 'events' (it has items)",
        ),
        ("${nope}", "${nope}: the context has no field 'nope' (it has params, steps, event,"),
        ("${params.tags[2]}", "${params.tags[2]}: params.tags has no index 2 (it has 2 items)"),
        ("${params.quiet.x}", "${params.quiet.x}: params.quiet is null"),
        ("${params.limit.x}", "${params.limit.x}: params.limit is a number, not an object"),
        ("${params.city[0]}", "${params.city[0]}: params.city is a string, not a list"),
        ("${event.kind}", "${event.kind}: event is null, not an object, so it has no field"),
        (
            "${steps.calendar.events[?urgent].title}",
            "${steps.calendar.events[?urgent].title}: steps.calendar has no field 'events'",
        ),
        ('${steps."odd-name".w}', "steps.\"odd-name\" has no field 'w'"),
    ],
)
def test_a_missing_path_is_an_error_naming_the_template(template: str, reason: str) -> None:
    error = refusal({"text": f"Today: {template}"})
    assert error.field == "with.text"
    assert reason in error.reason
    assert error.kind is Refusal.INVALID


def test_the_field_is_the_dotted_path_of_the_string() -> None:
    value = {"items": [{"to": "a"}, {"to": "b"}, {"to": "${steps.calendar.to}"}]}
    assert refusal(value).field == "with.items[2].to"
    with pytest.raises(TemplateError) as caught:
        render("${x}", {}, now=NOW, field="payload.pipeline[0].with.text")
    assert caught.value.field == "payload.pipeline[0].with.text"


def test_expressions_that_are_not_plain_paths_may_give_null() -> None:
    assert rendered("${params.missing || 'friend'}") == "friend"
    assert rendered("${not_null(params.missing, `10`)}") == 10
    assert rendered("${steps.calendar.items[?urgent == `false`] | [0]}") is None
    assert rendered("${ {v: params.missing} }") == {"v": None}
    assert rendered("hi ${steps.calendar.items[?urgent == `false`] | [0]}") == "hi null"


def test_a_plain_path_through_a_field_that_is_present_works_in_a_projection() -> None:
    assert rendered("${steps.weather.alerts[*].text}") == []
    assert rendered("${length(steps.weather.alerts)}") == 0


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("${steps.[}", "${steps.[}: invalid JMESPath"),
        ("${shout(params.city)}", "unknown function shout()"),
        ("${length(params.quiet)}", "In function length(), invalid type"),
        ("${}", "${}: empty template"),
        ("${ }", "empty template"),
        ("see ${params.city", "${params.city: template has no closing }"),
        ("${'unclosed}", "template has no closing }"),
    ],
)
def test_broken_templates_are_errors(template: str, reason: str) -> None:
    assert reason in refusal(template).reason


def test_no_rendering_ever_produces_python_spellings() -> None:
    text = rendered("${params.quiet} ${params.on} ${steps.weather.summary}")
    assert "None" not in text
    assert "True" not in text
    assert "'" not in text


def test_the_error_survives_pickling_with_its_field() -> None:
    error = pickle.loads(pickle.dumps(refusal({"a": "${nope}"})))
    assert (type(error), error.field, error.kind) == (TemplateError, "with.a", Refusal.INVALID)


# --- the scanner --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expressions"),
    [
        ("plain", []),
        ("${a} and ${b.c}", ["a", "b.c"]),
        ("${ {a: params.a} }", [" {a: params.a} "]),
        ("${ {a: {b: c}} } tail}", [" {a: {b: c}} "]),
        ('${\'}\'} ${`"}"`} ${"}"}', ["'}'", '`"}"`', '"}"']),
        ("${'it\\'s }'}", ["'it\\'s }'"]),
        ('${`{"k": 1}`}', ['`{"k": 1}`']),
        ("$${a} ${b}", ["b"]),
        ("$$${a}", []),
        ("{not} $ {a} $${", []),
    ],
)
def test_the_scanner_finds_each_template_whole(text: str, expressions: list[str]) -> None:
    assert template_expressions(text) == expressions


def test_the_scanner_refuses_an_unclosed_template() -> None:
    with pytest.raises(TemplateError, match="no closing"):
        template_expressions("${ {a: b }")


# --- time ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "iso"),
    [
        ("${now}", "2026-11-23T08:30:00+02:00"),
        ("${now+24h}", "2026-11-24T08:30:00+02:00"),
        ("${ now - 7d }", "2026-11-16T08:30:00+02:00"),
        ("${now+90m}", "2026-11-23T10:00:00+02:00"),
        ("${now+30s}", "2026-11-23T08:30:30+02:00"),
        ("${now+2w}", "2026-12-07T08:30:00+02:00"),
        ("${now-0d}", "2026-11-23T08:30:00+02:00"),
    ],
)
def test_now_and_offsets_are_iso_instants_in_the_task_zone(template: str, iso: str) -> None:
    assert rendered(template) == iso


def test_now_is_cut_to_the_second_and_usable_in_text_and_jmespath() -> None:
    now = NOW.replace(second=5, microsecond=999_999)
    assert rendered("From ${now} to ${now+1h}.", now=now) == (
        "From 2026-11-23T08:30:05+02:00 to 2026-11-23T09:30:05+02:00."
    )
    assert rendered("${ {at: now} }", now=now) == {"at": "2026-11-23T08:30:05+02:00"}


def test_days_are_calendar_days_and_hours_are_elapsed_across_dst() -> None:
    before = datetime(2026, 10, 24, 8, 30, tzinfo=CHISINAU)  # clocks go back on 10-25
    assert rendered("${now+1d}", now=before) == "2026-10-25T08:30:00+02:00"
    assert rendered("${now+24h}", now=before) == "2026-10-25T07:30:00+02:00"
    spring = datetime(2026, 3, 28, 8, 30, tzinfo=CHISINAU)  # clocks go forward on 03-29
    assert rendered("${now+1w}", now=spring) == "2026-04-04T08:30:00+03:00"
    assert rendered("${now+24h}", now=spring) == "2026-03-29T09:30:00+03:00"


def test_a_wall_time_dst_skips_moves_forward_and_a_repeated_one_is_its_first_pass() -> None:
    skipped = datetime(2026, 3, 7, 2, 30, tzinfo=NEW_YORK)  # 02:00-03:00 skipped on 03-08
    assert rendered("${now+1d}", now=skipped) == "2026-03-08T03:30:00-04:00"
    repeated = datetime(2026, 10, 31, 1, 30, tzinfo=NEW_YORK)  # 01:00-02:00 twice on 11-01
    assert rendered("${now+1d}", now=repeated) == "2026-11-01T01:30:00-04:00"
    second_pass = datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NEW_YORK)
    assert rendered("${now}", now=second_pass) == "2026-11-01T01:30:00-05:00"
    assert rendered("${now-1d}", now=second_pass) == "2026-10-31T01:30:00-04:00"


def test_fixed_offset_zones_work_too() -> None:
    now = datetime(2026, 1, 1, 23, 0, tzinfo=timezone(timedelta(hours=-3)))
    assert rendered("${now+2h}", now=now) == "2026-01-02T01:00:00-03:00"
    assert rendered("${now}", now=datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00+00:00"


def test_time_out_of_range_and_naive_now_are_refused() -> None:
    assert "outside the years" in refusal("${now+9999999d}").reason
    assert "too far" in refusal("${now+99999999999999w}").reason
    with pytest.raises(ValueError, match="timezone-aware"):
        rendered("${now}", now=datetime(2026, 1, 1))


# --- conditions and foreach ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "holds"),
    [
        ("params.on", True),
        ("${params.on}", True),
        (" ${ params.limit > `2` } ", True),
        ("params.limit > `5`", False),
        ("params.city == 'Chisinau' && !(params.on)", False),
        ("steps.weather.status == 'ok'", False),  # missing inside a comparison: null
        ("steps.weather.status != null", False),
        ("length(steps.weather.alerts) == `0`", True),
        ("!(params.quiet)", True),
    ],
)
def test_conditions_hold_when_they_evaluate_to_true(expression: str, holds: bool) -> None:
    assert condition_holds(expression, CONTEXT, now=NOW) is holds


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("params.limit", "params.limit: must evaluate to true or false, got 3"),
        ("${params.city}", '${params.city}: must evaluate to true or false, got "Chisinau"'),
        ("params.quiet", "must evaluate to true or false, got null"),
        ("steps.weather.missing > `1`", "got null"),
        ("steps.weather.on", "steps.weather has no field 'on'"),
        ("!params.quiet", "got null (JMESPath reads !a.b as (!a).b: write !(a.b))"),
        ("${params.on} && ${params.on}", "invalid JMESPath"),
        ("${}", "must be a JMESPath expression"),
        ("  ", "must be a JMESPath expression"),
    ],
)
def test_a_condition_must_give_a_boolean(expression: str, reason: str) -> None:
    with pytest.raises(TemplateError) as caught:
        condition_holds(expression, CONTEXT, now=NOW, field="pipeline[1].if")
    assert caught.value.field == "pipeline[1].if"
    assert reason in caught.value.reason


def test_foreach_selects_a_list_with_or_without_braces() -> None:
    items = CONTEXT["steps"]["calendar"]["items"]
    assert select_items("steps.calendar.items", CONTEXT, now=NOW, field="f") == items
    assert select_items("${steps.calendar.items[*].to}", CONTEXT, now=NOW, field="f") == [
        "ana@example.com"
    ]
    assert select_items("steps.calendar.items[?!urgent]", CONTEXT, now=NOW, field="f") == []


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("steps.weather.summary", "must evaluate to a list, got an object"),
        ("params.quiet", "must evaluate to a list, got null"),
        ("${params.limit}", "${params.limit}: must evaluate to a list, got a number"),
        ("steps.calendar.events", "steps.calendar has no field 'events'"),
    ],
)
def test_foreach_refuses_anything_but_a_list(expression: str, reason: str) -> None:
    with pytest.raises(TemplateError) as caught:
        select_items(expression, CONTEXT, now=NOW, field="with.items_path")
    assert caught.value.field == "with.items_path"
    assert reason in caught.value.reason


def test_a_foreach_body_sees_item_and_index() -> None:
    body_context = {**CONTEXT, "item": {"to": "ana@example.com"}, "index": 0}
    assert rendered({"to": "${item.to}", "n": "${index}"}, body_context) == {
        "to": "ana@example.com",
        "n": 0,
    }


# --- creation-time checks in domain.pipeline ----------------------------------------------


def pipeline(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"pipeline": list(steps), "params": {}}


def test_pipelines_accept_templates_with_braces_inside() -> None:
    validate_payload(
        pipeline(
            {"id": "a", "uses": "debug.echo", "with": {"v": "${ {x: params.x} }"}},
            {"id": "b", "uses": "debug.echo", "with": {"v": '${`{"k": 1}`} ${steps.a.v}'}},
            {"id": "c", "uses": "debug.echo", "if": "${ {n: steps.b.v}.n != null }"},
            {
                "id": "d",
                "uses": "pipeline.foreach",
                "with": {"items_path": "${steps.a.v}", "body": [{"id": "e", "uses": "x"}]},
            },
            {"id": "f", "uses": "debug.echo", "with": {"at": "${ now + 2w }", "lit": "$${"}},
        )
    )


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ({"id": "a", "uses": "x", "with": {"v": "${ {x: steps.later.v} }"}}, "with.v"),
        ({"id": "a", "uses": "x", "with": {"v": ["ok", "${params.x"]}}, "with.v[1]"),
        ({"id": "a", "uses": "x", "with": {"v": "${shout(params.x)}"}}, "with.v"),
        ({"id": "a", "uses": "x", "with": {"v": "${}"}}, "with.v"),
        ({"id": "a", "uses": "x", "if": "${params.a} && ${params.b}"}, "if"),
        (
            {"id": "a", "uses": "pipeline.foreach", "with": {"items_path": "${", "body": []}},
            "with.items_path",
        ),
    ],
)
def test_pipelines_refuse_broken_templates_naming_the_field(
    step: dict[str, Any], field: str
) -> None:
    with pytest.raises(PipelineError) as caught:
        validate_payload(pipeline(step, {"id": "later", "uses": "x"}))
    assert caught.value.field == f"payload.pipeline[0].{field}"
