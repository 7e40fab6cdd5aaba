"""Webhook rules: signatures, retry delays, what an attempt records, who wants what."""

from __future__ import annotations

from domain.events import WebhookAttempted, WebhookDelivered, WebhookFailed
from domain.webhook_signing import sign, verify, webhook_secret
from domain.webhooks import (
    AttemptResult,
    DeliveryState,
    evolve,
    record_attempt,
    retry_delay,
    wants,
)

BODY = b'{"type":"run.succeeded"}'


def test_a_signature_verifies_only_the_same_body_secret_and_a_recent_time() -> None:
    header = sign("s3cret", BODY, 1_700_000_000)
    assert verify("s3cret", header, BODY, now=1_700_000_010)
    assert not verify("other", header, BODY, now=1_700_000_010)
    assert not verify("s3cret", header, BODY + b" ", now=1_700_000_010)
    assert not verify("s3cret", header, BODY, now=1_700_000_000 + 301)
    for broken in ("", "t=abc,v1=00", "v1=00", header.replace("v1=", "v2=")):
        assert not verify("s3cret", broken, BODY, now=1_700_000_000)


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"42." + BODY, hashlib.sha256).hexdigest()
    assert sign("k", BODY, 42) == f"t=42,v1={expected}"


def test_secrets_differ_per_agent_and_per_key() -> None:
    key = b"0123456789abcdef"
    assert webhook_secret(key, "a") == webhook_secret(key, "a")
    assert webhook_secret(key, "a") != webhook_secret(key, "b")
    assert webhook_secret(key, "a") != webhook_secret(key + b"x", "a")


def test_retry_delays_double_up_to_the_cap() -> None:
    assert [retry_delay(n, 1.0, 10.0) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_an_attempt_records_delivered_failed_or_only_itself() -> None:
    ok = record_attempt("a", 7, "run.dead", 2, AttemptResult(204, None, 5.0), max_attempts=3)
    assert [type(e) for e in ok] == [WebhookAttempted, WebhookDelivered]
    retry = record_attempt("a", 7, "run.dead", 2, AttemptResult(500, None, 5.0), 3)
    assert [type(e) for e in retry] == [WebhookAttempted]
    assert retry[0].error == "HTTP 500"  # type: ignore[union-attr]
    last = record_attempt("a", 7, "run.dead", 3, AttemptResult(None, "timed out", 5.0), 3)
    assert [type(e) for e in last] == [WebhookAttempted, WebhookFailed]
    assert last[1].error == "timed out"  # type: ignore[union-attr]


def test_the_state_counts_attempts_and_ends_with_an_outcome() -> None:
    events = record_attempt("a", 1, "run.dead", 1, AttemptResult(500, None, 1.0), 3)
    events += record_attempt("a", 1, "run.dead", 2, AttemptResult(200, None, 1.0), 3)
    state = DeliveryState()
    for event in events:
        state = evolve(state, event)
    assert state == DeliveryState(attempts=2, finished=True)


def test_defaults_and_chosen_types() -> None:
    assert wants("run.succeeded", None)
    assert wants("approval.requested", None)
    assert not wants("run.queued", None)
    assert wants("run.queued", ("run.queued",))
    assert not wants("run.succeeded", ("run.queued",))
