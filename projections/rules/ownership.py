"""Which stream belongs to whom and which agent owns each event (`stream_owner`,
`event_owner`); the rules of ownership themselves are domain/ownership.py.

The admin reads the log itself, so events the admin owns are filed for no one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from domain import ownership as rules
from domain.envelope import Envelope

# A stream's owner, as far as the events before this one say (None: nobody's yet).
OwnerOf = Callable[[str], str | None]


class Filing(NamedTuple):
    """What one event does: maybe gives a new stream its owner, maybe files the event."""

    opened: tuple[str, str] | None  # (stream, owner), for a stream that has no owner yet
    owner: str | None  # the agent that owns the event (None: the admin's, or nobody's)


def file_event(owner_of: OwnerOf, envelope: Envelope) -> Filing:
    """Open the stream's ownership if this event opens it, then file the event.

    A stream's first owner stays: a later opener of the same stream changes nothing.
    """
    event, stream = envelope.event, envelope.stream
    if not isinstance(event, rules.DECIDES_OWNER):  # most events: filed for their stream's owner
        owner = owner_of(stream)
        return Filing(None, None if owner is None else _agent(owner))
    actor = envelope.meta.actor
    own = rules.own_owner(event, actor)
    if own is not None:
        return Filing(None, _agent(own))
    opener = rules.opened_by(event, actor)
    parent = rules.inherited_from(event)
    if opener is None and parent is not None:
        opener = owner_of(parent)
        filed = opener
    else:
        filed = opener if opener is not None else owner_of(stream)
    opened = None
    if opener is not None and owner_of(stream) is None:
        opened = (stream, opener)
    return Filing(opened, None if filed is None else _agent(filed))


def _agent(owner: str) -> str | None:
    return None if owner == rules.ADMIN else owner
