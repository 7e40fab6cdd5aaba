"""The dashboard's timeline marks offset changes between occurrences and reads times in zone."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.schedules import compile_schedule, next_occurrences
from services.api.ui.formatting import duration, local_text, span
from services.api.ui.timeline import timeline

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _occurrences(expr: str, zone: str, count: int) -> list[datetime]:
    schedule = compile_schedule("cron", expr, zone, dtstart=NOW, now=NOW)
    return next_occurrences(schedule, NOW, count)


def test_a_spring_forward_between_two_occurrences_is_marked_where_it_happens() -> None:
    marks = timeline(_occurrences("0 12 * * 0", "Europe/Chisinau", 6), "Europe/Chisinau", NOW)
    changes = [m for m in marks if m.kind == "dst"]
    assert len(changes) == 1
    (change,) = changes
    # EU rule: the last Sunday of March at 01:00 UTC, 03:00 local becomes 04:00.
    assert change.at == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert change.note == "Clocks go forward 1 h: +02:00 → +03:00"
    assert [m.kind for m in marks].count("occurrence") == 6
    before = marks[marks.index(change) - 1]
    after = marks[marks.index(change) + 1]
    assert local_text(before.at, "Europe/Chisinau") == "2026-03-22 12:00 +02:00 Europe/Chisinau"
    assert local_text(after.at, "Europe/Chisinau") == "2026-03-29 12:00 +03:00 Europe/Chisinau"


def test_a_time_skipped_by_the_jump_and_a_repeated_hour_are_noted() -> None:
    # 03:30 does not exist in Chisinau on 2026-03-29: the job fires at the first instant after.
    marks = timeline(_occurrences("30 3 * * *", "Europe/Chisinau", 40), "Europe/Chisinau", NOW)
    moved = [m for m in marks if m.kind == "occurrence" and "skipped" in m.note]
    assert [local_text(m.at, "Europe/Chisinau") for m in moved] == [
        "2026-03-29 04:00 +03:00 Europe/Chisinau"
    ]
    autumn = datetime(2026, 10, 20, tzinfo=UTC)
    hourly = next_occurrences(
        compile_schedule("cron", "30 * * * *", "Europe/Chisinau", dtstart=autumn, now=autumn),
        datetime(2026, 10, 24, 22, tzinfo=UTC),
        8,
    )
    notes = [m.note for m in timeline(hourly, "Europe/Chisinau", autumn) if m.note]
    assert "in the repeated hour (first pass)" in notes
    assert "in the repeated hour (second pass)" in notes
    assert any(note.startswith("Clocks go back 1 h: +03:00 → +02:00") for note in notes)


def test_no_change_no_mark_and_readable_lengths() -> None:
    marks = timeline(_occurrences("0 9 * * *", "UTC", 5), "UTC", NOW)
    assert {m.kind for m in marks} == {"occurrence"}
    assert local_text(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "Asia/Kolkata") == (
        "2026-01-02 08:34:05 +05:30 Asia/Kolkata"
    )
    assert local_text(NOW, "Not/AZone") == "2026-03-01 00:00 +00:00 Not/AZone"
    assert (duration(12.4), duration(1400), duration(123_000)) == ("12 ms", "1.40 s", "2 min 3 s")
    assert span(NOW - datetime(2026, 2, 27, 20, tzinfo=UTC)) == "28 h"
