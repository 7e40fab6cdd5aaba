"""Finding a pipeline's steps of some tools, foreach bodies included (pure)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


def steps_using(
    steps: object, path: str, tools: frozenset[str]
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Each step of ``steps`` (at ``path``, e.g. ``payload.pipeline``) that uses one of
    ``tools``, with its field path; steps that are not mappings are passed over (the
    pipeline's own validation names them)."""
    if not isinstance(steps, list):
        return
    for index, step in enumerate(steps):
        if not isinstance(step, Mapping):
            continue
        where = f"{path}[{index}]"
        if step.get("uses") in tools:
            yield where, step
        options = step.get("with")
        body = options.get("body") if isinstance(options, Mapping) else None
        yield from steps_using(body, f"{where}.with.body", tools)
