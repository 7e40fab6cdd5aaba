"""Whether two values are the same JSON, as a JSON store compares them (not as Python does)."""

from __future__ import annotations

from decimal import Decimal

import msgspec

_encoder = msgspec.json.Encoder()
_canonical_encoder = msgspec.json.Encoder(decimal_format="number", order="sorted")


def _number(text: str) -> int | Decimal:
    """A number literal by its decimal value: 1e23, 1.0e23 and 100000000000000000000000 are
    one number (PostgreSQL stores and returns the first two as the third); -0.0 is 0."""
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else value.normalize()


_decoder = msgspec.json.Decoder(float_hook=_number)


def canonical_json(value: object) -> bytes:
    """``value`` (JSON-compatible: dicts, lists, text, numbers, booleans, None) as JSON text
    that two values share exactly when they are the same JSON: keys sorted, each number
    written by its decimal value, and booleans apart from numbers (in Python 1 == True)."""
    return _canonical_encoder.encode(_decoder.decode(_encoder.encode(value)))


def same_json(left: object, right: object) -> bool:
    """Whether ``left`` and ``right`` are the same JSON (see `canonical_json`)."""
    return canonical_json(left) == canonical_json(right)
