"""Properties of wait filters: whatever a template gives, the filter tests exactly that value."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import jmespath
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.wait_filters import check_filter, render_filter
from domain.waits import matches

SETTINGS = settings(max_examples=300, deadline=None, database=None)
NOW = datetime(2030, 1, 1, 9, tzinfo=UTC)
FIELD = "payload.pipeline[0].with.filter"
# The characters that mean something to JMESPath or to its lexer, and some that do not.
tricky = st.sampled_from(["'", '"', "`", "\\", "|", "&", "$", "{", "}", "(", ")", " ", "a", "é"])
strings = st.text() | st.lists(tricky, max_size=12).map("".join)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | strings
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(strings, inner, max_size=4),
    max_leaves=10,
)
# Text an author may write inside '...': plain characters, and pairs of a backslash and any one.
raw_text = st.lists(
    st.sampled_from(["a", " ", "`", '"', "|", "é"]) | st.sampled_from("'\\a`").map("\\".__add__),
    max_size=6,
).map("".join)


def resumes(text: str, params: dict[str, Any], payload: dict[str, Any]) -> bool:
    check_filter(text, FIELD)
    rendered = render_filter(text, {"params": params}, now=NOW, field=FIELD)
    wait = {"topic": "t", "filter": rendered, "scope": {"params": params}}
    event = {"event_id": "e", "topic": "t", "payload": payload}
    return matches(wait, "admin", "admin", event, NOW)


@SETTINGS
@given(value=strings, other=strings)
def test_a_quoted_value_matches_itself_and_nothing_else(value: str, other: str) -> None:
    assume(other != value)
    text = "event.payload.id == '${params.id}'"
    assert resumes(text, {"id": value}, {"id": value})
    assert not resumes(text, {"id": value}, {"id": other})
    assert not resumes(text, {"id": value}, {"id": value + "x"})


@SETTINGS
@given(value=strings, before=raw_text, after=raw_text)
def test_text_around_a_template_in_quotes_keeps_its_jmespath_meaning(
    value: str, before: str, after: str
) -> None:
    text = f"event.payload.id == '{before}${{params.id}}{after}'"
    # what jmespath itself reads the author's text as
    expected = jmespath.search(f"'{before}'", {}) + value + jmespath.search(f"'{after}'", {})
    assert resumes(text, {"id": value}, {"id": expected})
    assert not resumes(text, {"id": value}, {"id": expected + "x"})


@SETTINGS
@given(value=json_values)
def test_a_bare_value_becomes_a_literal_equal_to_it(value: Any) -> None:
    text = "event.payload.v == ${params.v}"
    rendered = render_filter(text, {"params": {"v": value}}, now=NOW, field=FIELD)
    literal = jmespath.compile(rendered).parsed["children"][1]
    assert literal["type"] == "literal"
    assert json.dumps(literal["value"], sort_keys=True) == json.dumps(value, sort_keys=True)
    assert resumes(text, {"v": value}, {"v": value})
    assert not resumes(text, {"v": value}, {"v": [value]})
