"""RRULE schedules: merge rules and dates, apply exclusions, pick the next instant."""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from domain.schedules.rrule_stream import RuleStream
from domain.schedules.zones import in_range, lookahead, require_aware, scan_floor

# Consecutive EXRULE exclusions after which a recurrence set counts as exhausted.
MAX_EXCLUDED_RUN = 50_000


def _wall_key(item: datetime) -> tuple[datetime, int]:
    return item.replace(tzinfo=None, fold=0), item.fold


class RRuleSchedule:
    """A recurrence set (RRULEs, RDATEs minus EXRULEs, EXDATEs) in one evaluation zone.

    Occurrences are produced as local wall times by dateutil; each is read with the RFC 5545
    erratum 4271 convention (a nonexistent time takes the offset before the gap, a repeated
    time its first occurrence) and returned in the task's zone.
    """

    def __init__(
        self,
        zone: ZoneInfo,
        out_zone: ZoneInfo,
        rules: list[RuleStream],
        exrules: list[RuleStream],
        rdates: list[datetime],
        exdates: frozenset[datetime],
    ) -> None:
        self.zone = zone
        self.out_zone = out_zone
        self._rules = rules
        self._exrules = exrules
        self._rdates = sorted(rdates, key=_wall_key)
        self._rdate_keys = [_wall_key(item) for item in self._rdates]
        self._exdates = exdates

    def next_after(self, after: datetime) -> datetime | None:
        limit = require_aware(after, "after")
        try:
            found = self._search(limit)
        except OverflowError:
            return None
        return None if found is None else in_range(found, self.out_zone)

    def _search(self, limit: datetime) -> datetime | None:
        # Wall order and instant order differ only near a DST jump: a gap-shifted time lands
        # up to one jump later than the wall times right after it, so keep looking that far.
        best: datetime | None = None
        stop: datetime | None = None
        for item in self._candidates(scan_floor(limit, self.zone)):
            wall = item.replace(tzinfo=None, fold=0)
            if stop is not None and wall >= stop:
                break
            instant = item.astimezone(UTC)
            if instant <= limit or instant in self._exdates:
                continue
            if best is None or instant < best:
                best = instant
            if stop is None:
                stop = wall + lookahead(self.zone, wall)
                if stop == wall:
                    break
        return best

    def _candidates(self, floor: datetime) -> Iterator[datetime]:
        sources = [rule.walls_from(floor) for rule in self._rules]
        if self._rdates:
            start = bisect_left(self._rdate_keys, (floor, 0))
            sources.append(iter(self._rdates[start:]))
        merged = sources[0] if len(sources) == 1 else heapq.merge(*sources, key=_wall_key)
        if not self._exrules:
            return merged
        excluded = heapq.merge(*(r.walls_from(floor) for r in self._exrules), key=_wall_key)
        return _without(merged, excluded)


def _without(items: Iterator[datetime], excluded: Iterator[datetime]) -> Iterator[datetime]:
    """Items whose local wall time no EXRULE occurrence has (both streams are wall-ordered).

    An EXRULE can cancel an infinite RRULE entirely; a long enough run of exclusions is
    taken to mean exactly that, so the search ends instead of spinning.
    """
    pending = next(excluded, None)
    run = 0
    for item in items:
        key = _wall_key(item)
        while pending is not None and _wall_key(pending) < key:
            pending = next(excluded, None)
        if pending is not None and _wall_key(pending) == key:
            run += 1
            if run >= MAX_EXCLUDED_RUN:
                return
            continue
        run = 0
        yield item
