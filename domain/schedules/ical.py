"""Parser for recurrence text: DTSTART, RRULE, EXRULE, RDATE and EXDATE content lines."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from domain.schedules.errors import ScheduleError, expr_error
from domain.schedules.rrule_parts import RuleParts, parse_rule
from domain.schedules.zones import validate_timezone

_LINE = re.compile(r"([A-Za-z-]+)((?:;[^:;]*)*):(.*)")
_PARAM = re.compile(r';([A-Za-z-]+)=("[^"]*"|[^;:"]*)')
_DATE = re.compile(r"[0-9]{8}")
_DATE_TIME = re.compile(r"[0-9]{8}T[0-9]{6}Z?")
_PARAMS = {
    "DTSTART": {"TZID", "VALUE"},
    "RDATE": {"TZID", "VALUE"},
    "EXDATE": {"TZID", "VALUE"},
    "RRULE": set(),
    "EXRULE": set(),
}


@dataclass(frozen=True, slots=True)
class IcalTime:
    """A DATE or DATE-TIME value: naive wall time plus its zone (None = floating)."""

    wall: datetime
    zone: ZoneInfo | None
    utc: bool = False
    is_date: bool = False


@dataclass(slots=True)
class Recurrence:
    """Everything a recurrence text says; a bare RRULE gives just one rule."""

    dtstart: IcalTime | None = None
    rrules: list[RuleParts] = field(default_factory=list)
    exrules: list[RuleParts] = field(default_factory=list)
    rdates: list[IcalTime] = field(default_factory=list)
    exdates: list[IcalTime] = field(default_factory=list)


def parse_recurrence(text: str) -> Recurrence:
    """Parse a bare RRULE value (optionally ``RRULE:``-prefixed) or full recurrence text."""
    stripped = text.strip()
    if not stripped:
        raise expr_error("RRULE is empty")
    if ":" not in stripped and "\n" not in stripped:
        return Recurrence(rrules=[parse_rule(stripped)])
    result = Recurrence()
    for line in _unfold(stripped):
        _apply(result, line)
    if not (result.rrules or result.rdates):
        raise expr_error("recurrence text needs an RRULE or RDATE line")
    return result


def _unfold(text: str) -> list[str]:
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]  # RFC 5545 line folding
        elif raw.strip():
            lines.append(raw.strip())
    return lines


def _apply(result: Recurrence, line: str) -> None:
    name, params, value = _split_line(line)
    if name == "RRULE":
        result.rrules.append(parse_rule(value, "RRULE"))
    elif name == "EXRULE":
        result.exrules.append(parse_rule(value, "EXRULE"))
    elif name == "DTSTART":
        if result.dtstart is not None:
            raise expr_error("DTSTART is given twice")
        (result.dtstart,) = _parse_times(name, params, value, single=True)
    elif name == "RDATE":
        result.rdates.extend(_parse_times(name, params, value))
    else:
        result.exdates.extend(_parse_times(name, params, value))


def _split_line(line: str) -> tuple[str, dict[str, str], str]:
    match = _LINE.fullmatch(line)
    if match is None:
        raise expr_error(f"cannot parse line {line!r}")
    name, raw_params, value = match.group(1).upper(), match.group(2), match.group(3)
    if name not in _PARAMS:
        raise expr_error(f"unsupported property {name} (expected DTSTART, RRULE, RDATE, ...)")
    found = _PARAM.findall(raw_params)
    if "".join(f";{key}={raw}" for key, raw in found) != raw_params:
        raise expr_error(f"cannot parse the parameters of {name}")
    params: dict[str, str] = {}
    for key, raw in found:
        if key.upper() not in _PARAMS[name]:
            raise expr_error(f"{name} does not support parameter {key.upper()}")
        params[key.upper()] = raw.strip('"')
    return name, params, value.strip()


def _parse_times(
    name: str, params: dict[str, str], value: str, *, single: bool = False
) -> list[IcalTime]:
    kind = params.get("VALUE", "DATE-TIME").upper()
    if kind not in ("DATE", "DATE-TIME"):
        raise expr_error(f"{name} VALUE={kind} is not supported")
    zone = _zone(name, params["TZID"]) if "TZID" in params else None
    items = [value] if single else value.split(",")
    return [_parse_time(name, item.strip(), kind, zone) for item in items]


def _parse_time(name: str, text: str, kind: str, zone: ZoneInfo | None) -> IcalTime:
    is_date = _DATE.fullmatch(text) is not None
    if not is_date and (kind == "DATE" or not _DATE_TIME.fullmatch(text)):
        raise expr_error(f"{name} value {text!r} is not a {kind}")
    utc = text.endswith("Z")
    if utc and zone is not None:
        raise expr_error(f"{name} value {text!r} cannot be both UTC and TZID")
    try:
        wall = datetime.strptime(text.rstrip("Z"), "%Y%m%d" if is_date else "%Y%m%dT%H%M%S")
    except ValueError:
        raise expr_error(f"{name} value {text!r} is not a valid date") from None
    return IcalTime(wall, zone, utc=utc, is_date=is_date)


def _zone(name: str, tzid: str) -> ZoneInfo:
    try:
        return validate_timezone(tzid)
    except ScheduleError:
        raise expr_error(f"{name} TZID {tzid!r} is not a known IANA time zone") from None
