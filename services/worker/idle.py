"""How long an idle worker waits before it looks for work again."""

from __future__ import annotations


def idle_wait(
    seconds_until_ready: float | None, looked_again: bool, poll_seconds: float
) -> tuple[float, bool]:
    """The wait, and whether it is an immediate second look, given how long until the
    earliest unleased work is due (None: none is queued) right after a lease that left free
    slots, and whether the previous wait was such a second look.

    Ready work the lease did not take either fell due between the lease and the look (work
    queued ahead of its instant, as the timer's lead queues it): lease once more at once,
    or it cannot be leased now (its concurrency key is busy, another worker holds it): then
    wait for a wake-up or the poll interval rather than spin. Waiting the poll interval in
    the first case held runs up to a second past their instant (`bench compare`, p99 0.9 s).
    """
    if seconds_until_ready is None:
        return poll_seconds, False
    if seconds_until_ready <= 0:
        return (poll_seconds, False) if looked_again else (0.0, True)
    return min(seconds_until_ready, poll_seconds), False
