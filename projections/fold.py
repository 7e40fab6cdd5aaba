"""Fold the log into read-model rows in memory, with the pure rules of projections/rules.

The rebuild applies every event here and then writes each final row once, instead of writing
a row per event: a run's row would otherwise be written once per event of its run.
"""

from __future__ import annotations

import functools
import operator
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
        """Apply events in the log's order (``kinds``: each one's type).

        This runs once per event of the log, so it holds its tables and functions in locals.
        """
        tasks, runs_, work, owners = self.tasks, self.runs, self.work, self.owners
        filed, file_event, owner_of = self.filed, ownership.file_event, owners.get
        for envelope, kind in zip(envelopes, kinds, strict=True):
            task_rule, run_rule, work_rule, costs = _dispatch(kind)
            if task_rule is not None:
                key = task.key_of(envelope)
                row = task_rule(tasks.get(key), envelope)
                if row is None:
                    tasks.pop(key, None)
                else:
                    tasks[key] = row
            if run_rule is not None:
                key = runs.key_of(envelope)
                row = run_rule(runs_.get(key), envelope)
                if row is None:
                    runs_.pop(key, None)
                else:
                    runs_[key] = row
            if work_rule is not None:
                key = due_work.key_of(envelope)
                row = work_rule(work.get(key), envelope, runs_.get(key))
                if row is None:
                    work.pop(key, None)
                else:
                    work[key] = row
            if costs:
                self._spend(envelope)
            opened, owner = file_event(owner_of, envelope)
            if opened is not None:
                owners[opened[0]] = opened[1]
            if owner is not None:
                filed.append((owner, envelope.position))

    def _spend(self, envelope: Envelope) -> None:
        for key, amount in spend.costs(self.runs.get(runs.key_of(envelope)), envelope):
            self.spend[key] = self.spend.get(key, 0.0) + amount

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


def _rows(rows: dict[str, Row], columns: tuple[str, ...], structured: frozenset[str]) -> Records:
    """Each row as a tuple in ``columns`` order, JSON values as their text."""
    values = operator.itemgetter(*columns)
    if not structured:
        return columns, [values(row) for row in rows.values()]
    encoded = [i for i, c in enumerate(columns) if c in structured]
    records = []
    for row in rows.values():
        record = list(values(row))
        for i in encoded:
            if record[i] is not None:
                record[i] = json_text(record[i])
        records.append(tuple(record))
    return columns, records
