"""Rewrite `anyOf: [{constrained scalar}, {type: null}]` as `type: [scalar, null]` in a JSON Schema.

datamodel-code-generator turns the first form into one RootModel per field (`WebhookUrl`,
`Comment`, ...), which callers would have to wrap values in; the second gives a plain
`Annotated[str | None, Field(max_length=...)]`. Same meaning, cleaner models.

Usage: python fold_nullable.py IN.json OUT.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

_CONSTRAINTS = {
    "maxLength",
    "minLength",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "maxItems",
    "minItems",
    "additionalProperties",
}
_NULL = {"type": "null"}


def fold(node: Any) -> Any:
    if isinstance(node, list):
        return [fold(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: fold(value) for key, value in node.items()}
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if not (isinstance(options, list) and len(options) == 2 and _NULL in options):
            continue
        other = next(option for option in options if option != _NULL)
        if isinstance(other.get("type"), str) and _CONSTRAINTS & other.keys():
            node = {k: v for k, v in node.items() if k != key} | other
            node["type"] = [other["type"], "null"]
    return node


if __name__ == "__main__":
    with open(sys.argv[1]) as source:
        document = json.load(source)
    with open(sys.argv[2], "w") as target:
        json.dump(fold(document), target, indent=1)
