"""Pure rules of durable waits, re-runs and debounce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.debounce import check_debounce, debounced, key_text
from domain.errors import Refusal, RuleViolation
from domain.events import RunDebounced, RunQueued, RunResumed, RunWaitTimedOut, TaskDefinition
from domain.reruns import decide_rerun
from domain.waits import Waiting, deadline_passed, decide_resumes, matches

NOW = datetime(2030, 1, 1, 9, tzinfo=UTC)
WAIT = {
    "step_id": "reply",
    "topic": "mail.*",
    "filter": "event.payload.to == params.who",
    "scope": {"params": {"who": "ana"}, "steps": {}, "run": {}},
    "consumed": ["e-0"],
}


def event(**fields: Any) -> dict[str, Any]:
    return {"event_id": "e-1", "topic": "mail.reply", "payload": {"to": "ana"}, **fields}


@pytest.mark.parametrize(
    ("owner", "publisher", "seen", "resumes"),
    [
        ("alice", "alice", event(), True),
        ("alice", "admin", event(), True),
        ("admin", "worker-1", event(), True),
        ("alice", "mallory", event(), False),
        ("alice", "ingest:crm", event(), False),
        ("alice", "alice", event(topic="chat.reply"), False),
        ("alice", "alice", event(payload={"to": "bo"}), False),
        ("alice", "alice", event(event_id="e-0"), False),  # an earlier wait consumed it
        ("alice", "alice", event(payload=[]), False),  # a filter that fails does not hold
    ],
)
def test_who_and_what_resumes_a_wait(
    owner: str, publisher: str, seen: dict[str, Any], resumes: bool
) -> None:
    assert matches(WAIT, owner, publisher, seen, NOW) is resumes


def test_an_event_resumes_each_waiting_run_once() -> None:
    waiting = [Waiting("r-1", "alice", WAIT), Waiting("r-2", "bo", WAIT)]
    resumed: set[str] = set()
    (first,) = decide_resumes(event(), "alice", waiting, resumed, NOW)
    assert isinstance(first, RunResumed)
    assert (first.run_id, first.step_id, first.output) == ("r-1", "reply", event())
    assert decide_resumes(event(event_id="e-2"), "alice", waiting, resumed, NOW) == []


def test_a_deadline_wakes_a_sleep_and_times_out_a_wait() -> None:
    woke = deadline_passed({"run_id": "r", "step_id": "s", "kind": "sleep", "until": "x"})
    assert woke == RunResumed(run_id="r", step_id="s", reason="woke", output={"until": "x"})
    base = {"run_id": "r", "step_id": "s", "kind": "event"}
    assert deadline_passed({**base, "on_timeout": "default", "default": 1}) == RunWaitTimedOut(
        run_id="r", step_id="s", failed=False, output=1
    )
    assert deadline_passed(base) == RunWaitTimedOut(run_id="r", step_id="s", failed=True)


PIPELINE = [{"id": "a", "uses": "t.a"}, {"id": "b", "uses": "t.b"}, {"id": "c", "uses": "t.c"}]
QUEUED = RunQueued(
    run_id="old",
    task_id="t",
    owner="alice",
    scheduled_for=NOW,
    run_at=NOW,
    dedupe_key="k",
    dedupe_window_seconds=60,
)
DONE = {"a": {"status": "succeeded", "tool": "t.a", "output": 1}, "b": {"status": "failed"}}


def test_a_rerun_keeps_the_steps_before_and_links_the_runs() -> None:
    events, note = decide_rerun(QUEUED, "dead", DONE, PIPELINE, PIPELINE, "b", "new", NOW)
    queued, kept = events
    assert isinstance(queued, RunQueued)
    assert (queued.run_id, queued.trigger, queued.rerun_of, queued.dedupe_key) == (
        "new",
        "rerun",
        "old",
        None,
    )
    assert (kept.step_id, kept.output, kept.reused_from) == ("a", 1, "old")  # type: ignore[union-attr]
    assert (note.run_id, note.rerun_id, note.from_step) == ("old", "new", "b")


@pytest.mark.parametrize(
    ("status", "old", "from_step", "kind"),
    [
        ("running", PIPELINE, "b", Refusal.CONFLICT),
        ("dead", PIPELINE, "x", Refusal.INVALID),
        ("dead", [{"id": "a", "uses": "t.other"}, *PIPELINE[1:]], "b", Refusal.CONFLICT),
        ("dead", PIPELINE, "c", Refusal.CONFLICT),  # b did not succeed
    ],
)
def test_a_rerun_is_refused(status: str, old: list[Any], from_step: str, kind: Refusal) -> None:
    with pytest.raises(RuleViolation) as refused:
        decide_rerun(QUEUED, status, DONE, old, PIPELINE, from_step, "new", NOW)
    assert refused.value.kind is kind


def test_debounce_joins_events_of_a_key_until_the_run_starts() -> None:
    definition = TaskDefinition(
        title="t",
        schedule_kind="event",
        schedule_expr="x",
        debounce_seconds=5,
        debounce_key="payload.user",
    )
    state: dict[tuple[str, str], tuple[str, int]] = {}
    ids = iter(["r-1", "r-2"])

    def queued(run_id: str) -> RunQueued:
        return RunQueued(run_id=run_id, task_id="t", owner="o", scheduled_for=NOW, run_at=NOW)

    def one(user: str, n: int) -> Any:
        context = {"payload": {"user": user, "n": n}}
        return debounced(queued, "t", definition, context, NOW, lambda: next(ids), state)

    first = one("ana", 1)
    assert isinstance(first, RunQueued)
    assert first.run_at == NOW + timedelta(seconds=5)
    assert first.event == {
        "payload": {"user": "ana", "n": 1},
        "debounce": {"count": 1, "key": "ana"},
    }
    joined = one("ana", 2)
    assert joined == RunDebounced(
        run_id="r-1",
        count=2,
        event={"payload": {"user": "ana", "n": 2}, "debounce": {"count": 2, "key": "ana"}},
    )
    assert one("bo", 3).run_id == "r-2"


def test_debounce_belongs_to_event_tasks() -> None:
    cron = TaskDefinition(
        title="t", schedule_kind="cron", schedule_expr="* * * * *", debounce_seconds=5
    )
    with pytest.raises(RuleViolation, match="debounce_seconds"):
        check_debounce(cron)
    keyed = TaskDefinition(title="t", schedule_kind="event", schedule_expr="x", debounce_key="a")
    with pytest.raises(RuleViolation, match="debounce_key"):
        check_debounce(keyed)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)


def _same_json(a: Any, b: Any) -> bool:
    return bool(msgspec.json.encode(a, order="sorted") == msgspec.json.encode(b, order="sorted"))


@given(_JSON_VALUES, _JSON_VALUES)
def test_two_debounce_keys_are_one_exactly_when_their_json_values_are(a: Any, b: Any) -> None:
    assert (key_text(a) == key_text(b)) is _same_json(a, b)


@pytest.mark.parametrize(("a", "b"), [(5, "5"), (None, "null"), (True, "true"), ([1], "[1]")])
def test_a_value_and_its_json_text_are_two_debounce_keys(a: Any, b: Any) -> None:
    assert key_text(a) != key_text(b)
    assert key_text("repo-a") == "repo-a"  # an ordinary key is kept as it is
