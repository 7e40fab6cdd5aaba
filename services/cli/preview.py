"""`ordinaut schedule preview`: one rule from flags, or a batch of JSON-line requests."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from services.cli.errors import CommandError
from services.runtime.settings import Settings

# Flags of earlier releases and the API's names that replaced them.
RENAMED_FLAGS = {"--kind": "--schedule-kind", "--expr": "--schedule-expr", "--tz": "--timezone"}


async def cmd_schedule_preview(args: argparse.Namespace, settings: Settings) -> int:
    from domain.schedules import preview_request

    now = datetime.now(UTC)
    for old, new in RENAMED_FLAGS.items():
        if getattr(args, f"renamed_{old[2:]}") is not None:
            raise CommandError(f"{old} was renamed {new}")
    if args.batch is not None:
        return _preview_batch(args, now)
    if not args.schedule_kind or args.schedule_expr is None:
        if args.jsonl:  # --jsonl used to read requests from stdin: say where that went
            raise CommandError(
                "--jsonl only formats the answer now; preview requests read from"
                " a file or stdin with --batch FILE (- = stdin)"
            )
        raise CommandError(
            "schedule preview needs --schedule-kind and --schedule-expr (or --batch FILE)"
        )
    request = {
        "schedule_kind": args.schedule_kind,
        "schedule_expr": args.schedule_expr,
        "timezone": args.timezone,
        "count": args.count,
    }
    if args.after:
        request["after"] = args.after
    answer = preview_request(request, now)
    if "error" in answer:
        raise CommandError(str(answer["error"]))
    if args.jsonl:
        print(json.dumps(answer))
    else:
        print(json.dumps(answer["occurrences"], indent=2))
    return 0


def _preview_batch(args: argparse.Namespace, now: datetime) -> int:
    """One preview per JSON line of the batch file (- = stdin), one answer line each."""
    from domain.schedules import preview_request

    if args.schedule_kind or args.schedule_expr is not None or args.after:
        raise CommandError(
            "--batch reads each request from its file; drop --schedule-kind/--schedule-expr/--after"
        )
    if args.batch == "-" and sys.stdin.isatty():
        raise CommandError("--batch - reads JSON lines from stdin, which is a terminal; pipe them")
    try:
        lines = sys.stdin if args.batch == "-" else Path(args.batch).open()  # noqa: SIM115
    except OSError as exc:
        raise CommandError(f"cannot read {args.batch}: {exc.strerror}") from None
    with contextlib.ExitStack() as closing:
        if lines is not sys.stdin:
            closing.enter_context(lines)
        for line in lines:
            if line.strip():
                try:
                    request: object = json.loads(line)
                except json.JSONDecodeError as exc:
                    answer: dict[str, object] = {"error": f"not JSON: {exc.msg}"}
                else:
                    answer = preview_request(request, now)
                sys.stdout.write(json.dumps(answer) + "\n")
    return 0
