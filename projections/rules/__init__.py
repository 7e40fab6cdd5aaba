"""What each event does to a read model's rows, as pure functions (no I/O).

Each module has a table ``RULES`` from event type to a rule ``(row, envelope) -> row``: the
row as it was (None if there is none) and the row as the event leaves it (None: there is
none). The inline path (projections/rows.py) reads the rows an append touches, applies the
rules and writes what changed; the rebuild folds every event in memory and writes each final
row once. A projection's ``handles`` is its table's keys, so the event types are listed once.
"""
