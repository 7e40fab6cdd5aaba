"""Work limits: what is counted before a run, what rendering stops at, which env is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain.limits import LimitExceeded, WorkBudget, WorkLimits
from domain.secrets import redact
from domain.shell import clean_env, env_refusal
from domain.templates import render
from domain.workload import check_payload_work, planned_iterations
from services.runtime.settings import Settings, SettingsError

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def loop(items_path: str, *body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    steps = list(body) or [{"id": "e", "uses": "debug.echo"}]
    return {
        "id": f"l{len(items_path)}",
        "uses": "pipeline.foreach",
        "with": {"items_path": items_path, "body": steps},
        **extra,
    }


def test_loops_over_params_are_counted_at_every_level() -> None:
    pipeline = [loop("params.xs", loop("params.xs", loop("params.xs")))]
    budget = WorkBudget(WorkLimits())
    planned = planned_iterations(pipeline, {"params": {"xs": list(range(70))}}, NOW, budget, "p")
    assert planned == 70 + 70 * (70 + 70 * 70)
    with pytest.raises(LimitExceeded, match="ORDINAUT_RUN_MAX_ITERATIONS"):
        check_payload_work(
            {"pipeline": pipeline, "params": {"xs": list(range(70))}}, NOW, WorkLimits()
        )


@pytest.mark.parametrize(
    "inner",
    [
        loop("item.xs"),
        loop("[params.xs, [index]][0]"),
        loop("params.xs", **{"if": "params.on"}),
        loop("steps.e.xs"),  # e is a body step: another value at every iteration
    ],
)
def test_loops_that_vary_from_one_execution_to_the_next_are_not_counted(
    inner: dict[str, Any],
) -> None:
    pipeline = [loop("params.xs", {"id": "e", "uses": "debug.echo"}, inner)]
    budget = WorkBudget(WorkLimits())
    data = {"params": {"xs": [1, 2], "on": True}, "steps": {"e": {"xs": [1]}}}
    assert planned_iterations(pipeline, data, NOW, budget, "p") == 2


def test_a_loop_over_unknown_data_is_not_refused_before_it_runs() -> None:
    pipeline = [loop("event.xs", loop("params.xs"))]
    check_payload_work(
        {"pipeline": pipeline, "params": {"xs": list(range(900))}}, NOW, WorkLimits()
    )


def test_too_many_items_in_one_known_loop_are_refused() -> None:
    with pytest.raises(LimitExceeded, match=r"1001 items .*ORDINAUT_FOREACH_MAX_ITEMS") as caught:
        check_payload_work(
            {"pipeline": [loop("params.xs")], "params": {"xs": [0] * 1001}}, NOW, WorkLimits()
        )
    assert caught.value.field == "payload.pipeline[0].with.items_path"


def test_rendering_stops_once_past_its_byte_limit() -> None:
    context = {"params": {"big": "x" * 1000, "obj": {"k": "y" * 1000}}}
    with pytest.raises(LimitExceeded, match="ORDINAUT_STEP_INPUT_MAX_BYTES") as caught:
        render({"t": "${params.big}" * 50}, context, now=NOW, max_bytes=10_000)
    assert caught.value.field == "with.t"
    with pytest.raises(LimitExceeded):
        render({"a": ["${params.obj}"] * 20}, context, now=NOW, max_bytes=10_000)
    assert render({"t": "${params.big}"}, context, now=NOW, max_bytes=10_000)["t"] == "x" * 1000


def test_the_run_budget_counts_rendered_bytes_across_steps() -> None:
    budget = WorkBudget(WorkLimits(step_input_max_bytes=100, run_max_rendered_bytes=250))
    budget.spend_rendered("a.with", 100)
    budget.spend_rendered("b.with", 100)
    with pytest.raises(LimitExceeded, match="ORDINAUT_RUN_MAX_RENDERED_BYTES"):
        budget.spend_rendered("c.with", 100)
    with pytest.raises(LimitExceeded, match="ORDINAUT_STEP_INPUT_MAX_BYTES"):
        budget.spend_rendered("d.with", 101)


@pytest.mark.parametrize(
    "name",
    [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "BASH_ENV",
        "ENV",
        "PYTHONPATH",
        "BASH_FUNC_f%%",
        "IFS",
        "PS4",
        "SHELLOPTS",
        "PATH",
        "1BAD",
        "A=B",
    ],
)
def test_variables_that_change_how_programs_start_are_refused(name: str) -> None:
    assert env_refusal(name) is not None
    assert clean_env({name: "x", "GREETING": "hi"}) == {"GREETING": "hi"}


def test_ordinary_variables_pass() -> None:
    assert env_refusal("GREETING") is None
    assert env_refusal("LANG") is None
    assert env_refusal("ld_preload_note") is None  # the loader reads only the upper-case name


def test_redaction_covers_keys_nested_and_inside_longer_keys() -> None:
    secrets = {"T": "s3cr3t-value"}
    value = {"as_key": {"s3cr3t-value": 1}, "l": [{"pre-s3cr3t-value-post": {"s3cr3t-value": 2}}]}
    assert redact(value, secrets) == {
        "as_key": {"[secret:T]": 1},
        "l": [{"pre-[secret:T]-post": {"[secret:T]": 2}}],
    }


def test_redaction_copies_only_what_holds_a_secret() -> None:
    secrets = {"T": "s3cr3t-value"}
    clean = {"a": [1, {"b": "text"}], "c": ("x",)}
    assert redact(clean, secrets) is clean
    leaked = {"kept": {"a": [1]}, "echo": ["Bearer s3cr3t-value"]}
    redacted = redact(leaked, secrets)
    assert redacted == {"kept": {"a": [1]}, "echo": ["Bearer [secret:T]"]}
    assert redacted["kept"] is leaked["kept"]
    assert leaked["echo"] == ["Bearer s3cr3t-value"]  # the original is left as it was


def test_limits_are_read_from_settings_with_their_defaults() -> None:
    assert Settings.from_env({}).work_limits == WorkLimits()
    settings = Settings.from_env(
        {"ORDINAUT_FOREACH_MAX_ITEMS": "50", "ORDINAUT_RUN_MAX_RENDERED_BYTES": "2048"}
    )
    assert settings.work_limits.foreach_max_items == 50
    assert settings.work_limits.run_max_rendered_bytes == 2048
    assert settings.work_limits.run_max_iterations == WorkLimits().run_max_iterations
    with pytest.raises(SettingsError, match="ORDINAUT_RUN_MAX_ITERATIONS"):
        Settings.from_env({"ORDINAUT_RUN_MAX_ITERATIONS": "0"})
