"""The `shell.exec` builtin: run an allow-listed program in its own process group.

The program gets only the environment the step lists (minus the variables domain.shell
denies), no terminal and no stdin unless given. A path is checked as the kernel will resolve
it: its real path (symlinks and ``..`` followed) must match an allow-list entry's real path,
and that real path is what runs, so a symlink swapped after the check changes nothing.
Its stdout and stderr are drained to the end (so it never blocks on a full pipe) but only
the last ``max_output_bytes`` of each are kept. When the call is abandoned (its timeout, a
cancel, a shutdown) the whole process group is killed, so children it spawned die with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from dataclasses import dataclass
from typing import Any

from domain.errors import RuleViolation
from domain.shell import (
    OUTPUT_BYTES_DEFAULT,
    check_executable,
    check_form,
    clean_env,
    executable_of,
)
from services.tools.errors import ToolCallError, excerpt

_CHUNK = 65_536
STDERR_TAIL = 500  # characters of stderr quoted in the error of a failed run


@dataclass
class _Captured:
    data: bytearray
    dropped: int = 0

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


class ShellTool:
    """Runs `shell.exec` steps; ``allow`` is ORDINAUT_SHELL_ALLOW, checked at every call."""

    def __init__(self, allow: tuple[str, ...] = ()) -> None:
        self.allow = allow

    async def run(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Exit code and output; ToolCallError for a refusal or a non-zero exit."""
        argv = self._argv(arguments)
        # A program name was looked up on PATH: the admin allowed it by name, wherever it is.
        named = not executable_of(arguments).startswith("/")
        real = argv[0] if named else self._real_path(argv[0])
        cap = int(arguments.get("max_output_bytes", OUTPUT_BYTES_DEFAULT))
        stdin = arguments.get("stdin")
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                executable=real,  # argv[0] stays as given (multi-call programs read it)
                cwd=arguments.get("cwd"),
                env=clean_env(arguments.get("env", {})),
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group, killed as one
            )
        except OSError as exc:
            reason = f"shell.exec: cannot start {argv[0]!r}: {exc}"
            raise ToolCallError(reason, retryable=False) from None
        try:
            out, err, code = await self._communicate(process, stdin, cap)
        except BaseException:
            _kill_group(process.pid)
            with contextlib.suppress(ProcessLookupError):
                await asyncio.shield(process.wait())
            raise
        if code != 0:
            tail = err.text()[-STDERR_TAIL:]
            raise ToolCallError(
                f"shell.exec: exit code {code}; stderr: {excerpt(tail, STDERR_TAIL)}",
                retryable=True,
            )
        return _output(code, out, err)

    def _argv(self, arguments: dict[str, Any]) -> list[str]:
        program = executable_of(arguments)
        try:
            check_form(arguments)
            check_executable(program, self.allow, "argv[0]")
        except RuleViolation as exc:
            raise ToolCallError(f"shell.exec: {exc.field}: {exc.reason}", retryable=False) from None
        if arguments.get("shell") is True:
            return [program, "-c", str(arguments["command"])]
        path = program if program.startswith("/") else shutil.which(program)
        if path is None:
            raise ToolCallError(f"shell.exec: no program {program!r} on PATH", retryable=False)
        return [path, *[str(a) for a in arguments["argv"][1:]]]

    def _real_path(self, path: str) -> str:
        """``path`` with symlinks and ``..`` resolved, if that is allowed too."""
        real = os.path.realpath(path)
        try:
            check_executable(real, [_real_pattern(entry) for entry in self.allow], "argv[0]")
        except RuleViolation:
            reason = f"shell.exec: argv[0]: {path!r} resolves to {real!r}, which is not allowed"
            raise ToolCallError(f"{reason} (ORDINAUT_SHELL_ALLOW)", retryable=False) from None
        return real

    async def _communicate(
        self, process: asyncio.subprocess.Process, stdin: str | None, cap: int
    ) -> tuple[_Captured, _Captured, int]:
        assert process.stdout is not None
        assert process.stderr is not None
        if stdin is not None and process.stdin is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                process.stdin.write(stdin.encode())
                await process.stdin.drain()
            process.stdin.close()
        out, err = await asyncio.gather(_drain(process.stdout, cap), _drain(process.stderr, cap))
        return out, err, await process.wait()


async def _drain(stream: asyncio.StreamReader, cap: int) -> _Captured:
    """Read to the end, keeping the last ``cap`` bytes (the end explains an exit best)."""
    captured = _Captured(bytearray())
    while chunk := await stream.read(_CHUNK):
        captured.data += chunk
        if len(captured.data) > cap:
            excess = len(captured.data) - cap
            del captured.data[:excess]
            captured.dropped += excess
    return captured


def _real_pattern(entry: str) -> str:
    """An allow-list entry with its directories' symlinks resolved (up to its first glob), so
    that real paths can be matched against it; program-name entries stay as they are."""
    if "/" not in entry:
        return entry
    parts = entry.split("/")
    glob_at = next((i for i, part in enumerate(parts) if any(c in part for c in "*?[")), None)
    if glob_at is None:
        return os.path.realpath(entry)
    head = os.path.realpath("/".join(parts[:glob_at]) or "/").rstrip("/")
    return "/".join([head, *parts[glob_at:]])


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _output(code: int, out: _Captured, err: _Captured) -> dict[str, Any]:
    return {
        "exit_code": code,
        "stdout": _marked(out),
        "stderr": _marked(err),
        "stdout_truncated": out.dropped > 0,
        "stderr_truncated": err.dropped > 0,
    }


def _marked(captured: _Captured) -> str:
    text = captured.text()
    return f"[{captured.dropped} bytes truncated]\n{text}" if captured.dropped else text
