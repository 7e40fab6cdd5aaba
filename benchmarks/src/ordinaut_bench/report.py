"""Helpers every benchmark shares: percentiles and a plain-text results table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TextIO


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation; NaN when ``values`` is empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, not {q}")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def print_table(rows: list[dict[str, object]], out: TextIO) -> None:
    """Print rows as aligned columns (headers from the first row's keys; numbers right-aligned)."""
    if not rows:
        return
    headers = list(rows[0])
    cells = [[_cell(row.get(h, "")) for h in headers] for row in rows]
    widths = [max(len(h), *(len(line[i]) for line in cells)) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row.get(h), int | float) for row in rows) for h in headers]

    def line(parts: list[str]) -> str:
        padded = (
            p.rjust(w) if num else p.ljust(w)
            for p, w, num in zip(parts, widths, numeric, strict=True)
        )
        return "  ".join(padded).rstrip()

    print(line(headers), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for parts in cells:
        print(line(parts), file=out)
