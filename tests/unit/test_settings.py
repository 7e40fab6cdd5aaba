"""Settings from the environment: defaults, ranges, and one-line errors naming the variable."""

from __future__ import annotations

import pytest

from domain.rate_limits import RateLimit, RateLimits
from services.runtime.settings import Settings, SettingsError


def test_worker_settings_default_and_parse() -> None:
    assert Settings.from_env({}).worker_grace_seconds == 20
    settings = Settings.from_env(
        {"ORDINAUT_WORKER_GRACE_SECONDS": "0", "ORDINAUT_WORKER_CONCURRENCY": "3"}
    )
    assert (settings.worker_grace_seconds, settings.worker_concurrency) == (0, 3)


def test_the_timer_lead_defaults_to_a_quarter_second_and_may_be_off() -> None:
    assert Settings.from_env({}).timer_lead_seconds == 0.25
    assert Settings.from_env({"ORDINAUT_TIMER_LEAD_SECONDS": "0"}).timer_lead_seconds == 0


def test_the_notifier_reclaim_delay_defaults_to_a_minute() -> None:
    assert Settings.from_env({}).notifier_reclaim_seconds == 60
    reclaim = {"ORDINAUT_NOTIFIER_RECLAIM_SECONDS": "3"}
    assert Settings.from_env(reclaim).notifier_reclaim_seconds == 3


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ORDINAUT_WORKER_GRACE_SECONDS", "-1"),
        ("ORDINAUT_WORKER_GRACE_SECONDS", "soon"),
        ("ORDINAUT_WORKER_POLL_SECONDS", "0"),
        ("ORDINAUT_TIMER_LEAD_SECONDS", "-0.1"),
        ("ORDINAUT_TIMER_LEAD_SECONDS", "11"),
        ("ORDINAUT_PORT", "70000"),
        ("ORDINAUT_NOTIFIER_RECLAIM_SECONDS", "0"),
        ("ORDINAUT_RATE_LIMIT_COMMANDS", "lots"),
        ("ORDINAUT_RATE_LIMIT_READS", "0/s"),
        ("ORDINAUT_OUTBOUND_ALLOW", "10.0.0.0/8,intranet"),
        ("ORDINAUT_PYTHON_TOOLS_ALLOW", "mycompany.tools,../evil"),
        ("ORDINAUT_PYTHON_TOOLS_ALLOW", "mycompany.tools:run"),
    ],
)
def test_a_bad_setting_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_rate_limit_settings_parse_and_can_be_off() -> None:
    assert Settings.from_env({}).rate_limits == RateLimits()
    limits = Settings.from_env(
        {"ORDINAUT_RATE_LIMIT_COMMANDS": "5/s burst 10", "ORDINAUT_RATE_LIMIT_EVENTS": "off"}
    ).rate_limits
    assert limits.commands == RateLimit(5.0, 10)
    assert limits.events is None
    assert limits.reads == RateLimits().reads


def test_the_outbound_allow_list_defaults_to_loopback_and_may_be_emptied() -> None:
    assert [str(n) for n in Settings.from_env({}).outbound_allow] == ["127.0.0.0/8", "::1/128"]
    assert Settings.from_env({"ORDINAUT_OUTBOUND_ALLOW": ""}).outbound_allow == ()


def test_shell_and_python_allow_lists_default_to_refusing_everything() -> None:
    defaults = Settings.from_env({})
    assert (defaults.shell_allow, defaults.python_allow) == ((), ())
    settings = Settings.from_env(
        {"ORDINAUT_SHELL_ALLOW": "/opt/jobs/*.sh, pg_dump", "ORDINAUT_PYTHON_TOOLS_ALLOW": "a.b,c"}
    )
    assert settings.shell_allow == ("/opt/jobs/*.sh", "pg_dump")
    assert settings.python_allow == ("a.b", "c")
