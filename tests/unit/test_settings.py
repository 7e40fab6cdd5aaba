"""Settings from the environment: defaults, ranges, and one-line errors naming the variable."""

from __future__ import annotations

import pytest

from services.runtime.settings import Settings, SettingsError


def test_worker_settings_default_and_parse() -> None:
    assert Settings.from_env({}).worker_grace_seconds == 20
    settings = Settings.from_env(
        {"ORDINAUT_WORKER_GRACE_SECONDS": "0", "ORDINAUT_WORKER_CONCURRENCY": "3"}
    )
    assert (settings.worker_grace_seconds, settings.worker_concurrency) == (0, 3)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ORDINAUT_WORKER_GRACE_SECONDS", "-1"),
        ("ORDINAUT_WORKER_GRACE_SECONDS", "soon"),
        ("ORDINAUT_WORKER_POLL_SECONDS", "0"),
        ("ORDINAUT_PORT", "70000"),
        ("ORDINAUT_OUTBOUND_ALLOW", "10.0.0.0/8,intranet"),
        ("ORDINAUT_PYTHON_TOOLS_ALLOW", "mycompany.tools,../evil"),
        ("ORDINAUT_PYTHON_TOOLS_ALLOW", "mycompany.tools:run"),
    ],
)
def test_a_bad_setting_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


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
