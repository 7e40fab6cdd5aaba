"""One-shot schedules: a single ISO-8601 instant, with a short grace period for "now"."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from domain.schedules.errors import expr_error
from domain.schedules.zones import require_aware, user_instant

GRACE = timedelta(seconds=60)
_DATE_ONLY = re.compile(r"[0-9]{4}-?[0-9]{2}-?[0-9]{2}")


class OnceSchedule:
    """Fires once at ``at``; next_after(t) is ``at`` while ``at`` > t, then None."""

    __slots__ = ("at",)

    def __init__(self, at: datetime) -> None:
        self.at = at

    def next_after(self, after: datetime) -> datetime | None:
        return self.at if self.at > require_aware(after, "after") else None


def compile_once(expr: str, zone: ZoneInfo, now: datetime | None) -> OnceSchedule:
    """Parse the instant; a time without offset is wall time in ``zone`` (gap: offset before).

    ``now`` is None for a stored schedule, which was checked against the past when created.
    """
    text = expr.strip()
    if _DATE_ONLY.fullmatch(text):
        raise expr_error(f"{text!r} needs a time of day, e.g. {text}T09:00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise expr_error(f"{text!r} is not an ISO-8601 date-time") from None
    instant = user_instant(parsed, zone, "schedule_expr")
    if now is not None and instant < require_aware(now, "now") - GRACE:
        raise expr_error(f"{text} is in the past")
    return OnceSchedule(instant.astimezone(zone))
