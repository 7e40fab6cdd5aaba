"""Fold the log into read-model rows in memory, with the pure rules of projections/rules.

The rebuild applies every event here and then writes each final row once, instead of writing
a row per event: a run's row would otherwise be written once per event of its run.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from domain.envelope import Envelope
from projections.rules import due_work, ownership, runs, spend, task
from projections.rules.row import Row, Rule, json_text

# The projections (by name) whose rows this fold builds, and the tables each one writes.
TABLES: dict[str, tuple[str, ...]] = {
    "task": ("task",),
    "runs": ("runs",),
    "due_work": ("due_work",),
    "ownership": ("stream_owner", "event_owner"),
    "spend": ("spend",),
}
Records = tuple[tuple[str, ...], list[tuple[Any, ...]]]


class Fold:
    """Every folded read model's rows, as the events applied so far leave them."""

    def __init__(self) -> None:
        self.tasks: dict[str, Row] = {}
        self.runs: dict[str, Row] = {}
        self.work: dict[str, Row] = {}
        self.owners: dict[str, str] = {}
        self.filed: list[tuple[str, int]] = []  # (owner, position)
        self.spend: dict[spend.SpendKey, float] = {}

    def apply(self, envelopes: Iterable[Envelope], kinds: Iterable[str]) -> None:
        """Apply events in the log's order (``kinds``: each one's type)."""
        tasks, runs_, work = self.tasks, self.runs, self.work
        for envelope, kind in zip(envelopes, kinds, strict=True):
            task_rule, run_rule, work_rule, costs = _dispatch(kind)
            if task_rule is not None:
                key = task.key_of(envelope)
                _store(tasks, key, task_rule(tasks.get(key), envelope))
            if run_rule is not None:
                key = runs.key_of(envelope)
                _store(runs_, key, run_rule(runs_.get(key), envelope))
            if work_rule is not None:
                key = due_work.key_of(envelope)
                _store(work, key, work_rule(work.get(key), envelope, runs_.get(key)))
            if costs:
                self._spend(envelope)
            self._file(envelope)

    def _spend(self, envelope: Envelope) -> None:
        for key, amount in spend.costs(self.runs.get(runs.key_of(envelope)), envelope):
            self.spend[key] = self.spend.get(key, 0.0) + amount

    def _file(self, envelope: Envelope) -> None:
        filing = ownership.file_event(self.owners.get, envelope)
        if filing.opened is not None:
            stream, owner = filing.opened
            self.owners[stream] = owner
        if filing.owner is not None:
            self.filed.append((filing.owner, envelope.position))

    def records(self, name: str) -> dict[str, Records]:
        """The rows of the projection ``name``, per table, ready for COPY."""
        match name:
            case "task":
                return {"task": _rows(self.tasks, task.COLUMNS, task.STRUCTURED)}
            case "runs":
                return {"runs": _rows(self.runs, runs.COLUMNS, runs.STRUCTURED)}
            case "due_work":
                return {"due_work": _rows(self.work, due_work.COLUMNS, due_work.STRUCTURED)}
            case "ownership":
                return {
                    "stream_owner": (("stream", "owner"), list(self.owners.items())),
                    "event_owner": (("owner", "position"), self.filed),
                }
            case "spend":
                columns = ("scope", "subject", "day", "amount")
                return {"spend": (columns, [(*key, amount) for key, amount in self.spend.items()])}
        raise KeyError(name)


@functools.cache
def _dispatch(kind: str) -> tuple[Rule | None, Rule | None, due_work.WorkRule | None, bool]:
    """The rules an event type has in each folded model, and whether it may cost."""
    return (
        task.RULES.get(kind),
        runs.RULES.get(kind),
        due_work.RULES.get(kind),
        kind in spend.HANDLES,
    )


def _store(rows: dict[str, Row], key: str, row: Row | None) -> None:
    if row is None:
        rows.pop(key, None)
    else:
        rows[key] = row


def _rows(rows: dict[str, Row], columns: tuple[str, ...], structured: frozenset[str]) -> Records:
    """Each row as a tuple in ``columns`` order, JSON values as their text."""
    if not structured:
        return columns, [tuple(row[c] for c in columns) for row in rows.values()]
    encode = [c in structured for c in columns]
    return columns, [
        tuple(
            json_text(row[c]) if as_json and row[c] is not None else row[c]
            for c, as_json in zip(columns, encode, strict=True)
        )
        for row in rows.values()
    ]
