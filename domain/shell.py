"""Rules of the `shell.exec` builtin: its input, and which executables the admin allows.

An allow-list entry is either a path pattern (it contains a `/`; `*` matches within one
directory level, e.g. `/opt/jobs/*.sh`) matched against an absolute executable path, or a
name pattern (no `/`, e.g. `pg_dump`) matched against a bare program name, which is then
looked up on the worker's PATH. Relative paths such as `./x` are never allowed: what they
name depends on the working directory. Workers check the real path (symlinks and ``..``
resolved) against the allow-list's real paths, and run that path.

The program's environment is only what the step's ``env`` sets, minus the variables that
change how any program or shell starts (``LD_*``, ``BASH_ENV``, ``ENV``, ``PYTHON*``...):
a task setting one is refused when it is created, and a worker drops them anyway.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from typing import Any

from domain.errors import RuleViolation
from domain.pipeline_steps import steps_using

SHELL_EXEC = "shell.exec"
_SHELL_ONLY = frozenset({SHELL_EXEC})
# `shell: true` runs the command string with this program, so the admin must allow it.
SHELL = "/bin/sh"
OUTPUT_BYTES_DEFAULT = 65_536
OUTPUT_BYTES_MAX = 1_048_576

INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "argv": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1000,
            "items": {"type": "string", "maxLength": 100_000},
        },
        "command": {"type": "string", "minLength": 1, "maxLength": 100_000},
        "shell": {"type": "boolean", "default": False},
        "cwd": {"type": "string", "minLength": 1, "maxLength": 4096},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
        "stdin": {"type": "string"},
        "max_output_bytes": {
            "type": "integer",
            "minimum": 0,
            "maximum": OUTPUT_BYTES_MAX,
            "default": OUTPUT_BYTES_DEFAULT,
        },
    },
}
OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["exit_code", "stdout", "stderr", "stdout_truncated", "stderr_truncated"],
    "properties": {
        "exit_code": {"type": "integer"},
        "stdout": {"type": "string"},
        "stderr": {"type": "string"},
        "stdout_truncated": {"type": "boolean"},
        "stderr_truncated": {"type": "boolean"},
    },
}


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Read by the dynamic loader, a shell, an interpreter or libc whatever the program is: setting
# one runs code or changes which code runs. PATH too: an allowed script's commands would run
# from anywhere the task names.
DENIED_ENV = (
    "LD_*",
    "DYLD_*",
    "BASH_ENV",
    "ENV",
    "BASH_FUNC_*",
    "BASHOPTS",
    "SHELLOPTS",
    "PS4",
    "IFS",
    "CDPATH",
    "GLOBIGNORE",
    "PROMPT_COMMAND",
    "PATH",
    "PYTHON*",
    "PERL5OPT",
    "PERL5LIB",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "NODE_OPTIONS",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "GCONV_PATH",
    "GLIBC_TUNABLES",
    "MALLOC_*",
    "LOCPATH",
    "NLSPATH",
    "HOSTALIASES",
    "RESOLV_HOST_CONF",
    "LOCALDOMAIN",
)


class ShellRefused(RuleViolation):
    """The executable is not on the admin's allow-list (ORDINAUT_SHELL_ALLOW)."""


def parse_allow(text: str) -> tuple[str, ...]:
    """Comma-separated patterns, blanks dropped; empty means nothing is allowed."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def check_form(arguments: Mapping[str, Any]) -> None:
    """An ``argv`` list alone, or a ``command`` string with ``shell: true``: never a string
    without a shell (a string split on spaces would run something other than what was meant).
    """
    if arguments.get("shell") is True:
        if "argv" in arguments or not isinstance(arguments.get("command"), str):
            raise RuleViolation("command", "with shell: true, give a command string (no argv)")
    elif "command" in arguments or "argv" not in arguments:
        raise RuleViolation(
            "argv", "give argv, a list of strings (a command string needs shell: true)"
        )


def executable_of(arguments: Mapping[str, Any]) -> str:
    """The program a `shell.exec` input runs: the shell, or the first argument."""
    if arguments.get("shell") is True:
        return SHELL
    argv = arguments.get("argv")
    return str(argv[0]) if isinstance(argv, list) and argv else ""


def env_refusal(name: str) -> str | None:
    """Why a step may not set environment variable ``name``, or None if it may."""
    if not _ENV_NAME.match(name):
        return "is not a variable name (letters, digits and _, not starting with a digit)"
    denied = next((pattern for pattern in DENIED_ENV if fnmatchcase(name, pattern)), None)
    if denied is not None:
        return f"may not be set ({denied} changes how programs start)"
    return None


def clean_env(env: Mapping[str, Any]) -> dict[str, str]:
    """The variables of a step's ``env`` a program may receive (denied ones dropped)."""
    return {name: str(value) for name, value in env.items() if env_refusal(name) is None}


def check_env(env: object, field: str) -> None:
    """ShellRefused naming ``field.NAME`` for the first variable a step may not set."""
    if not isinstance(env, Mapping):
        return  # a template: the worker drops denied variables when it renders
    for name in env:
        reason = env_refusal(str(name))
        if reason is not None:
            raise ShellRefused(f"{field}.{name}", reason)


def check_executable(executable: str, allow: Sequence[str], field: str) -> None:
    """ShellRefused naming ``field`` unless ``executable`` matches an allow-list entry."""
    if "/" in executable and not executable.startswith("/"):
        raise ShellRefused(
            field, f"{executable!r} is a relative path; give an absolute path or a program name"
        )
    if not any(_matches(executable, pattern) for pattern in allow):
        hint = "nothing is allowed" if not allow else "it matches no entry"
        raise ShellRefused(
            field, f"{executable!r} is not allowed to run ({hint} in ORDINAUT_SHELL_ALLOW)"
        )


def _matches(executable: str, pattern: str) -> bool:
    if "/" in pattern:
        if not executable.startswith("/"):
            return False
        # normpath first, so /opt/jobs/../../bin/rm cannot pass for /opt/jobs/*
        return PurePosixPath(posixpath.normpath(executable)).match(pattern)
    return "/" not in executable and fnmatchcase(executable, pattern)


def check_static_env(steps: object, path: str) -> None:
    """Refuse `shell.exec` steps whose ``env`` sets a denied variable."""
    for where, step in steps_using(steps, path, _SHELL_ONLY):
        options = step.get("with")
        if isinstance(options, Mapping) and "env" in options:
            check_env(options["env"], f"{where}.with.env")


def check_static_steps(steps: object, path: str, allow: Sequence[str]) -> None:
    """Refuse `shell.exec` steps whose program is known before the run and is not allowed.

    A program given by a template (``${...}``) is only known at run time, where the worker
    checks it again.
    """
    for where, step in steps_using(steps, path, _SHELL_ONLY):
        options = step.get("with")
        if not isinstance(options, Mapping):
            continue
        if isinstance(options.get("shell", False), bool):  # not a template: the form is known
            try:
                check_form(options)
            except RuleViolation as exc:
                raise ShellRefused(f"{where}.with.{exc.field}", exc.reason) from None
        if options.get("shell") is True:
            check_executable(SHELL, allow, f"{where}.with.shell")
            continue
        argv = options.get("argv")
        if isinstance(argv, list) and argv and isinstance(argv[0], str) and "${" not in argv[0]:
            check_executable(argv[0], allow, f"{where}.with.argv[0]")
