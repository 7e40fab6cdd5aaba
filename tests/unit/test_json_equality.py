"""Same JSON: numbers by their decimal value, booleans apart from numbers, keys in any order."""

from __future__ import annotations

import pytest

from domain.json_equality import canonical_json, same_json


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (1e23, 10**23),
        (1.0e16, 10**16),
        (2.0, 2),
        (-0.0, 0),
        (1.5e-7, 0.00000015),
        (5e-324, 5e-324),
        ({"b": 1, "a": [1.0]}, {"a": [1], "b": 1}),
    ],
)
def test_the_same_number_written_otherwise_is_the_same_json(left: object, right: object) -> None:
    assert same_json(left, right)


@pytest.mark.parametrize(
    ("left", "right"),
    [(True, 1), (False, 0), (None, False), (0.1, 0.2), (1e23, 10**23 + 1), ([1, 2], [2, 1])],
)
def test_different_json_is_told_apart(left: object, right: object) -> None:
    assert not same_json(left, right)


def test_canonical_json_is_json_with_sorted_keys_and_plain_numbers() -> None:
    value = {"b": [1e23, 2.0, -0.0, 1.5e-7, True, None], "a": "x"}
    assert canonical_json(value) == (
        b'{"a":"x","b":[100000000000000000000000,2,0,1.5E-7,true,null]}'
    )
