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


async def cmd_schedule_preview(args: argparse.Namespace, settings: Settings) -> int:
    from domain.schedules import preview_request

    now = datetime.now(UTC)
    if args.batch is not None:
        return _preview_batch(args, now)
    if not args.kind or args.expr is None:
        if args.jsonl:  # --jsonl used to read requests from stdin: say where that went
            raise CommandError("--jsonl only formats the answer now; preview requests read from"
                               " a file or stdin with --batch FILE (- = stdin)")  # fmt: skip
        raise CommandError("schedule preview needs --kind and --expr (or --batch FILE)")
    request = {"kind": args.kind, "expr": args.expr, "tz": args.tz, "count": args.count}
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

    if args.kind or args.expr is not None or args.after:
        raise CommandError("--batch reads each request from its file; drop --kind/--expr/--after")
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
