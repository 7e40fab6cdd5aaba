"""Cron expression parser: 5 or 6 fields, names, ranges, steps, lists and @macros."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from domain.schedules.errors import ScheduleError, expr_error

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# Longest month length when a year may be leap; used to reject e.g. "31 2" up front.
MAX_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_NUMBER = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True, slots=True)
class Field:
    """One cron position: its name in messages, bounds and optional names."""

    name: str
    low: int
    high: int
    names: dict[str, int] = field(default_factory=dict)


FIELDS = (
    Field("second", 0, 59),
    Field("minute", 0, 59),
    Field("hour", 0, 23),
    Field("day-of-month", 1, 31),
    Field("month", 1, 12, {name: i + 1 for i, name in enumerate(_MONTHS)}),
    Field("day-of-week", 0, 7, {name: i for i, name in enumerate(_WEEKDAYS)}),
)


@dataclass(frozen=True, slots=True)
class CronSpec:
    """Parsed cron expression; day-of-week uses 0 = Sunday (7 is folded into 0)."""

    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: tuple[int, ...]
    weekdays: frozenset[int]
    dom_star: bool
    dow_star: bool
    fixed: bool

    @property
    def and_days(self) -> bool:
        """Vixie rule: a ``*``-prefixed day field makes the two day fields AND, else OR."""
        return self.dom_star or self.dow_star

    @property
    def every_day(self) -> bool:
        return self.and_days and len(self.days) == 31 and len(self.weekdays) == 7

    def day_matches(self, day: int, weekday: int) -> bool:
        """``weekday`` is cron-style, 0 = Sunday."""
        if self.and_days:
            return day in self.days and weekday in self.weekdays
        return day in self.days or weekday in self.weekdays


def parse_cron(expr: str) -> CronSpec:
    """Parse a cron expression or raise ScheduleError naming the offending field."""
    fields = _split(expr)
    values = [parse_field(text, spec) for text, spec in zip(fields, FIELDS, strict=True)]
    spec = CronSpec(
        seconds=tuple(sorted(values[0])),
        minutes=tuple(sorted(values[1])),
        hours=tuple(sorted(values[2])),
        days=frozenset(values[3]),
        months=tuple(sorted(values[4])),
        weekdays=frozenset(v % 7 for v in values[5]),
        dom_star=fields[3].startswith("*"),
        dow_star=fields[5].startswith("*"),
        fixed=not (fields[1].startswith("*") or fields[2].startswith("*")),
    )
    _check_reachable(spec)
    return spec


def _split(expr: str) -> list[str]:
    text = expr.strip()
    if not text:
        raise expr_error("cron expression is empty")
    if text.startswith("@"):
        macro = MACROS.get(text.lower())
        if macro is None:
            raise expr_error(f"unsupported cron macro {text!r}")
        text = macro
    fields = text.split()
    if len(fields) == 5:
        return ["0", *fields]
    if len(fields) != 6:
        raise expr_error(f"cron expression needs 5 or 6 fields, got {len(fields)}")
    return fields


def parse_field(text: str, spec: Field) -> set[int]:
    """Values selected by one field's text, e.g. ``1-5,*/15`` or ``MON-FRI``."""
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise _field_error(spec, f"{text!r} has an empty list item")
        values.update(_parse_item(item, spec))
    return values


def _parse_item(item: str, spec: Field) -> range:
    base, slash, step_text = item.partition("/")
    step = _parse_step(step_text, spec) if slash else 1
    if base == "*":
        return range(spec.low, spec.high + 1, step)
    first_text, dash, last_text = base.partition("-")
    first = _parse_value(first_text, spec)
    if dash:
        last = _parse_value(last_text, spec)
    elif slash:  # "5/10" means from 5 to the field maximum in steps of 10, as in cronie
        last = spec.high
    else:
        last = first
    if first > last:
        raise _field_error(spec, f"range {first}-{last} is reversed")
    return range(first, last + 1, step)


def _parse_step(text: str, spec: Field) -> int:
    if not _NUMBER.fullmatch(text):
        raise _field_error(spec, f"step {text!r} is not a positive number")
    step = int(text)
    if step == 0:
        raise _field_error(spec, "step 0 must be at least 1")
    return step


def _parse_value(text: str, spec: Field) -> int:
    if _NUMBER.fullmatch(text):
        value = int(text)
    elif text.upper() in spec.names:
        value = spec.names[text.upper()]
    else:
        kind = "a number or name" if spec.names else "a number"
        raise _field_error(spec, f"value {text!r} is not {kind}")
    if not spec.low <= value <= spec.high:
        raise _field_error(spec, f"value {value} is out of range {spec.low}-{spec.high}")
    return value


def _check_reachable(spec: CronSpec) -> None:
    # With AND semantics the day-of-month must exist in some selected month (29 Feb counts).
    if not spec.and_days:
        return
    if any(day <= MAX_DAYS[month - 1] for day in spec.days for month in spec.months):
        return
    days = ",".join(str(d) for d in sorted(spec.days))
    months = ",".join(str(m) for m in spec.months)
    raise expr_error(f"day-of-month {days} never occurs in month {months}")


def _field_error(spec: Field, reason: str) -> ScheduleError:
    return expr_error(f"{spec.name} {reason}")
