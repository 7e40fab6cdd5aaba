"""Properties of template rendering over random JSON contexts, texts, zones and instants."""

from __future__ import annotations

import functools
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import jmespath
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.schedules import validate_timezone
from domain.templates import TemplateError, render, template_expressions

ZONES = [
    "UTC",
    "Europe/Chisinau",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST changes
    "Asia/Kolkata",
    "Pacific/Apia",  # skipped the whole of 2011-12-30
    "Antarctica/Troll",  # two-hour DST jumps
    "America/St_Johns",
]
SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
NOW = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}

names = st.builds(str.__add__, st.sampled_from("abcxyz_"), st.text("abcxyz_019", max_size=6))
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=4),
    max_leaves=12,
)
zones = st.sampled_from(ZONES).map(validate_timezone)
instants = st.datetimes(datetime(2000, 1, 1), datetime(2037, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)


def same_json(left: Any, right: Any) -> bool:
    """Equal as JSON (so True differs from 1 and 1.0 from 1)."""
    return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)


@st.composite
def paths_into(draw: st.DrawFn, value: Any) -> tuple[str, Any]:
    """A JMESPath plain path to some node of ``value`` (under ``params.v``), and that node."""
    path, node = "params.v", value
    while draw(st.booleans()):
        if isinstance(node, dict) and node:
            key = draw(st.sampled_from(sorted(node)))
            path, node = f"{path}.{key}", node[key]
        elif isinstance(node, list) and node:
            index = draw(st.integers(-len(node), len(node) - 1))
            path, node = f"{path}[{index}]", node[index]
        else:
            break
    return path, node


@SETTINGS
@given(json_values, st.data())
def test_a_whole_template_returns_the_value_it_names(value: Any, data: st.DataObject) -> None:
    path, node = data.draw(paths_into(value))
    context = {"params": {"v": value}}
    result = render("${" + path + "}", context, now=NOW)
    assert result is node
    assert same_json(result, jmespath.search(path, context))


@SETTINGS
@given(json_values)
def test_in_text_every_value_is_its_json_and_never_a_python_spelling(value: Any) -> None:
    text = render("<${params.v}>", {"params": {"v": value}}, now=NOW)
    inner = text[1:-1]
    if isinstance(value, str):
        assert inner == value
    else:
        assert same_json(json.loads(inner), value)
        # Python spellings outside string literals ("False" inside a string is just text)
        bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', inner)
        assert "None" not in bare
        assert "True" not in bare
        assert "False" not in bare


@SETTINGS
@given(st.dictionaries(names, json_values, max_size=4), names)
def test_a_missing_field_is_an_error_never_a_value(params: dict[str, Any], name: str) -> None:
    template = "${params." + name + "}"
    if name in params:
        assert same_json(render(template, {"params": params}, now=NOW), params[name])
        return
    with pytest.raises(TemplateError) as caught:
        render({"x": ["a", f"see {template}"]}, {"params": params}, now=NOW)
    assert caught.value.field == "with.x[1]"
    assert caught.value.reason.startswith(f"{template}: params has no field {name!r}")


@SETTINGS
@given(st.text().filter(lambda text: "${" not in text))
def test_text_without_templates_is_returned_as_it_is(text: str) -> None:
    assert render(text, {}, now=NOW) is text


@SETTINGS
@given(st.text(alphabet=st.sampled_from("${}ab' `\\")))
def test_escaping_every_opening_renders_the_original_text(text: str) -> None:
    escaped = text.replace("${", "$${")
    assert template_expressions(escaped) == []
    assert render(escaped, {}, now=NOW) == text


# --- the scanner finds whole expressions, braces and quotes included ----------------------

raw_strings = st.text(st.characters(exclude_characters="'\\"), max_size=6).map(lambda s: f"'{s}'")
literals = json_values.filter(lambda v: "`" not in json.dumps(v)).map(
    lambda v: f"`{json.dumps(v)}`"
)
expressions = st.recursive(
    names.map(lambda name: f"params.{name}") | raw_strings | literals,
    lambda inner: (
        st.dictionaries(names, inner, min_size=1, max_size=3).map(
            lambda items: "{" + ", ".join(f"{k}: {v}" for k, v in items.items()) + "}"
        )
        | st.lists(inner, min_size=1, max_size=3).map(lambda items: f"[{', '.join(items)}]")
        | st.tuples(inner, inner).map(lambda pair: f"{pair[0]} || {pair[1]}")
    ),
    max_leaves=6,
)
literal_text = st.text(st.characters(exclude_characters="$"), max_size=8)


@SETTINGS
@given(st.lists(st.tuples(literal_text, expressions), max_size=4), literal_text)
def test_the_scanner_finds_every_expression_whole(pieces: list[tuple[str, str]], tail: str) -> None:
    text = "".join(f"{before}${{ {expression} }}" for before, expression in pieces) + tail
    assert template_expressions(text) == [f" {expression} " for _, expression in pieces]


@SETTINGS
@given(expressions, st.dictionaries(names, json_values, max_size=3))
def test_whole_templates_agree_with_jmespath(expression: str, params: dict[str, Any]) -> None:
    context = {"params": params}
    expected = jmespath.search(expression, {**context, "now": NOW.isoformat()})
    if expression.startswith("params.") and expression[7:] not in params:
        return  # a missing plain path is an error, tested above
    assert same_json(render("${ " + expression + " }", context, now=NOW), expected)


# --- time ---------------------------------------------------------------------------------


def rendered_time(template: str, now: datetime) -> datetime:
    return datetime.fromisoformat(render(template, {}, now=now))


@SETTINGS
@given(instants, zones, st.integers(-5000, 5000), st.sampled_from("smh"))
def test_seconds_minutes_hours_are_elapsed_time(
    instant: datetime, zone: Any, amount: int, unit: str
) -> None:
    now = instant.astimezone(zone)
    sign = "-" if amount < 0 else "+"
    later = rendered_time(f"${{now{sign}{abs(amount)}{unit}}}", now)
    base = rendered_time("${now}", now)
    assert later - base == timedelta(seconds=amount * UNIT_SECONDS[unit])
    assert later.utcoffset() == later.astimezone(zone).utcoffset()  # shown in the task zone


def check_calendar_shift(now: datetime, zone: Any, days: int, unit: str) -> None:
    """``now±N`` d/w keeps the wall clock; DST can only move a time skipped or repeated."""
    count = days // 7 if unit == "w" else days
    sign = "-" if count < 0 else "+"
    result = rendered_time(f"${{now{sign}{abs(count)}{unit}}}", now)
    wall = now.replace(tzinfo=None, microsecond=0, fold=0) + timedelta(days=days)
    # The policy: a wall time is read with its first (fold=0) offset; in a gap that is the
    # offset before the gap, which moves the time forward by the gap's length.
    assert result.astimezone(UTC) == (wall - zone.utcoffset(wall)).replace(tzinfo=UTC)
    assert result.utcoffset() == result.astimezone(zone).utcoffset()
    exists = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if exists == wall:
        assert result.replace(tzinfo=None) == wall
    else:
        assert result.replace(tzinfo=None) > wall


@SETTINGS
@given(instants, zones, st.integers(-400, 400), st.sampled_from("dw"))
def test_days_and_weeks_keep_the_wall_clock(
    instant: datetime, zone: Any, amount: int, unit: str
) -> None:
    days = amount * 7 if unit == "w" else amount
    check_calendar_shift(instant.astimezone(zone), zone, days, unit)


@functools.cache
def transitions(name: str) -> list[datetime]:
    """The zone's offset changes in 2020-2030, to the minute."""
    zone, found = validate_timezone(name), []
    step = timedelta(hours=6)
    instant = datetime(2020, 1, 1, tzinfo=UTC)
    while instant.year < 2031:
        if instant.astimezone(zone).utcoffset() != (instant + step).astimezone(zone).utcoffset():
            low, high = instant, instant + step
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                same = middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset()
                low, high = (middle, high) if same else (low, middle)
            found.append(high)
        instant += step
    return found


@st.composite
def walls_near_dst_changes(draw: st.DrawFn) -> tuple[Any, datetime]:
    """A zone and a naive wall time within 150 minutes of one of its DST changes."""
    name = draw(st.sampled_from([z for z in ZONES if transitions(z)]))
    change = draw(st.sampled_from(transitions(name)))
    zone = validate_timezone(name)
    before = (change - timedelta(minutes=1)).astimezone(zone).utcoffset()
    assert before is not None
    minutes = draw(st.integers(-150, 150))
    return zone, change.replace(tzinfo=None) + before + timedelta(minutes=minutes)


@SETTINGS
@given(walls_near_dst_changes(), st.integers(1, 30), st.booleans(), st.sampled_from("dw"))
def test_days_and_weeks_landing_near_a_dst_change_follow_the_policy(
    target: tuple[Any, datetime], amount: int, backwards: bool, unit: str
) -> None:
    zone, wall = target
    days = (amount * 7 if unit == "w" else amount) * (-1 if backwards else 1)
    start = wall - timedelta(days=days)
    now = start.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
    if now.replace(tzinfo=None) != start:
        return  # the start itself fell into a change; the landing wall differs
    check_calendar_shift(now, zone, days, unit)
