"""Pure schedule engine: cron, RRULE and one-shot schedules evaluated in IANA time zones.

Every task has an IANA ``timezone``, read from the ``tzdata`` package so that every host uses
the same database. Rules are evaluated in local wall time; results are aware datetimes in the
task's zone, and "next after t" means strictly after the absolute instant t (``t`` may be in
any zone). Gaps and overlaps are computed from the zone's real offsets, never assumed to be
one hour, so 30-minute changes (Australia/Lord_Howe, +10:30 <-> +11:00) follow the same rules.

DST policy:

- cron, fixed-time jobs (minute and hour fields both not starting with ``*``, and ``@daily``,
  ``@weekly``, ``@monthly``, ``@yearly``, ``@annually``, ``@midnight``): a wall time skipped
  by a spring-forward jump fires once, at the first instant after the jump (Europe/Chisinau
  2026-03-29, clocks go 03:00 -> 04:00: ``30 3 * * *`` fires at 04:00 EEST; America/New_York
  2026-03-08: ``30 2 * * *`` fires at 03:00 EDT). Several fixed slots in the same gap
  (``0,30 2 * * *`` in New York) collapse into that one firing, never two runs at the same
  instant. A wall time that occurs twice fires once, at its first occurrence.
- cron, wildcard jobs (minute or hour field starting with ``*``, and ``@hourly``): slots
  inside the skipped interval are skipped; slots in a repeated interval fire in both passes,
  as they are different instants (``*/30 * * * *`` in New York on 2026-11-01 fires at 01:00
  EDT, 01:30 EDT, 01:00 EST, 01:30 EST).
- rrule: RFC 5545 as corrected by erratum 4271. A nonexistent local time is read with the
  offset in force before the gap (02:30 in New York on spring-forward day is 03:30 EDT); a
  repeated local time means its first occurrence; invalid dates (30 February) are skipped
  without counting; occurrences landing on the same instant are returned once.
- once: a local time without offset follows the rrule reading (gap: offset before the gap;
  repeated time: first occurrence).
- Results never repeat an instant and never go backwards.

Instants a user gives (a one-shot's time, ``dtstart``, a preview's ``after``, DTSTART, RDATE
and EXDATE) pass through ``zones.user_instant``: without an offset they are wall time in the
zone, and outside the supported range (a day inside the calendar's ends) they are a
ScheduleError naming the field. Occurrences end at that range's end.
"""

from domain.schedules.base import Schedule, next_occurrences
from domain.schedules.errors import ScheduleError
from domain.schedules.factory import compile_schedule, load_schedule
from domain.schedules.preview import preview_occurrences, preview_request
from domain.schedules.zones import anchor_dtstart, validate_timezone

__all__ = [
    "Schedule",
    "ScheduleError",
    "anchor_dtstart",
    "compile_schedule",
    "load_schedule",
    "next_occurrences",
    "preview_occurrences",
    "preview_request",
    "validate_timezone",
]
