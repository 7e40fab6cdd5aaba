"""What recording a run's events can come to: the answer the runner's ``record`` gives."""

from __future__ import annotations

from enum import Enum


class RecordOutcome(Enum):
    """What became of a record."""

    RECORDED = "recorded"
    CANCEL_REQUESTED = "cancel_requested"  # recorded; someone asked the run to stop
    LOST = "lost"  # not recorded: the lease is no longer this worker's


class RecordRejected(Exception):
    """The events could not be recorded because of what they hold (not the store's state):
    recording them again cannot succeed, so the run's attempt fails instead."""
