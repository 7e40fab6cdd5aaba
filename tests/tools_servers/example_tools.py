"""The tools the example pipelines use, played by real servers that record every call they get.

Five MCP servers (built with the official SDK) and an LLM stand-in served over the ``http``
transport. Run as a script, an MCP server speaks stdio:
``example_tools.py <server name> <record file>`` (stdout is the protocol channel).

Every MCP ``tools/call`` is appended to the record file as one JSON line, its arguments exactly
as they arrived (before the SDK validates or coerces them), with the idempotency key.
Only the standard library, ``mcp`` and ``typing_extensions`` are imported: a stdio server
starts without this repository on its path.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from typing_extensions import TypedDict

IDEMPOTENCY_META_KEY = "ordinaut/idempotency-key"

EVENTS = [
    {"title": "Standup", "start": "09:30", "end": "09:45", "attendees": 6},
    {"title": "Design review", "start": "14:00", "end": "15:00", "attendees": 3},
]
FORECAST = {
    "city": "Chisinau",
    "summary": "Sunny, 24.5 C",
    "high_c": 24.5,
    "low_c": 14,
    "rain_chance": 0.1,
}
UNREAD = [
    {"thread_id": "u-1", "sender": "boss@example.com", "subject": "Budget numbers"},
    {"thread_id": "u-2", "sender": "hr@example.com", "subject": "Holiday form"},
]
OUTBOUND = [
    {
        "thread_id": "t-101",
        "to": "ana@example.com",
        "subject": "Contract draft",
        "sent_hours_ago": 80,
    },
    {"thread_id": "t-102", "to": "ion@example.com", "subject": "Invoice 42", "sent_hours_ago": 96},
    {
        "thread_id": "t-103",
        "to": "maria@example.com",
        "subject": "Offsite venue",
        "sent_hours_ago": 150,
    },
]


class CalendarEvent(TypedDict):
    title: str
    start: str
    end: str
    attendees: int


class Window(TypedDict):
    start: str
    end: str


class EventList(TypedDict):
    items: list[CalendarEvent]
    count: int
    window: Window


class Forecast(TypedDict):
    city: str
    summary: str
    high_c: float
    low_c: int
    rain_chance: float


class Unread(TypedDict):
    thread_id: str
    sender: str
    subject: str


class UnreadList(TypedDict):
    threads: list[Unread]
    count: int


class Outbound(TypedDict):
    thread_id: str
    to: str
    subject: str
    sent_hours_ago: int


class OutboundList(TypedDict):
    """The same threads under both names the examples read (``threads`` and ``items``)."""

    threads: list[Outbound]
    items: list[Outbound]
    count: int


class Sent(TypedDict):
    ok: bool
    message_id: int
    chat_id: int


class Draft(TypedDict):
    thread_id: str
    to: str
    subject: str
    body: str


class SentFollowups(TypedDict):
    sent: int
    thread_ids: list[str]


class SentDraft(TypedDict):
    ok: bool
    thread_id: str
    message_id: str


class CallRecorder:
    """MCP middleware: appends every tools/call, as received, to a JSON-lines file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.method == "tools/call" and ctx.params is not None:
            self.record(dict(ctx.params))
        return await call_next(ctx)

    def record(self, params: dict[str, Any]) -> None:
        meta = params.get("_meta") or {}
        line = {
            "tool": params.get("name"),
            "arguments": params.get("arguments"),
            "key": meta.get(IDEMPOTENCY_META_KEY),
        }
        with self._lock, self.path.open("a") as sink:
            sink.write(json.dumps(line) + "\n")


def recorded_calls(path: Path) -> list[dict[str, Any]]:
    """The calls a server recorded in ``path``, oldest first."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _server(name: str, record: Path) -> MCPServer:
    return MCPServer(name, log_level="WARNING", middleware=[CallRecorder(record)])


def calendar_server(record: Path) -> MCPServer:
    server = _server("google-calendar-mcp", record)

    @server.tool()
    def list_events(start: str, end: str, max: int = 50) -> EventList:
        """The events between start and end (ISO-8601), at most ``max`` of them."""
        items = [CalendarEvent(**event) for event in EVENTS[:max]]
        return {"items": items, "count": len(items), "window": {"start": start, "end": end}}

    return server


def weather_server(record: Path) -> MCPServer:
    server = _server("weather-mcp", record)

    @server.tool()
    def forecast(city: str) -> Forecast:
        """Today's forecast for a city."""
        return Forecast(**{**FORECAST, "city": city})

    @server.tool()
    def today_forecast(city: str) -> Forecast:
        """Today's forecast for a city (the same as forecast)."""
        return Forecast(**{**FORECAST, "city": city})

    return server


def imap_server(record: Path) -> MCPServer:
    server = _server("imap-mcp", record)

    @server.tool()
    def top_unread(count: int = 10) -> UnreadList:
        """The newest unread threads."""
        threads = [Unread(**thread) for thread in UNREAD[:count]]
        return {"threads": threads, "count": len(threads)}

    @server.tool()
    def find_outbound_without_reply(
        lookback_days: int, min_age_hours: int, max_items: int = 20
    ) -> OutboundList:
        """Sent threads nobody answered, older than min_age_hours."""
        found = [Outbound(**t) for t in OUTBOUND if t["sent_hours_ago"] >= min_age_hours]
        found = found[:max_items]
        return {"threads": found, "items": found, "count": len(found)}

    return server


def telegram_server(record: Path) -> MCPServer:
    server = _server("telegram-mcp", record)

    @server.tool()
    def send_message(chat_id: int, text: str, disable_preview: bool = True) -> Sent:
        """Send a text message to a chat."""
        return {"ok": True, "message_id": 7001, "chat_id": chat_id}

    return server


def gmail_server(record: Path) -> MCPServer:
    server = _server("gmail-mcp", record)

    @server.tool()
    def send_followups(drafts: list[Draft]) -> SentFollowups:
        """Send each draft as a reply in its thread."""
        return {"sent": len(drafts), "thread_ids": [draft["thread_id"] for draft in drafts]}

    @server.tool()
    def send_draft(thread_id: str, text: str) -> SentDraft:
        """Send one reply in a thread."""
        return {"ok": True, "thread_id": thread_id, "message_id": f"m-{thread_id}"}

    return server


MCP_SERVERS: dict[str, Callable[[Path], MCPServer]] = {
    "google-calendar-mcp": calendar_server,
    "weather-mcp": weather_server,
    "imap-mcp": imap_server,
    "telegram-mcp": telegram_server,
    "gmail-mcp": gmail_server,
}


# --- the LLM stand-in, an http-transport tool server ----------------------------------------

_TEXT = {
    "type": "object",
    "required": ["text"],
    "properties": {"text": {"type": "string"}},
    "additionalProperties": False,
}
_THREAD = {
    "type": "object",
    "required": ["thread_id", "to", "subject"],
    "properties": {
        "thread_id": {"type": "string"},
        "to": {"type": "string"},
        "subject": {"type": "string"},
    },
}
_DRAFT = {
    "type": "object",
    "required": ["thread_id", "to", "subject", "body"],
    "properties": {key: {"type": "string"} for key in ("thread_id", "to", "subject", "body")},
    "additionalProperties": False,
}
LLM_SCHEMAS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "plan": (
        {
            "type": "object",
            "required": ["instruction"],
            "additionalProperties": False,
            "properties": {
                "instruction": {"type": "string", "minLength": 1},
                "calendar": {"type": "object", "required": ["items"]},
                "weather": {"type": "object", "required": ["summary"]},
            },
        },
        _TEXT,
    ),
    "generate_followups": (
        {
            "type": "object",
            "required": ["emails", "tone"],
            "additionalProperties": False,
            "properties": {
                "emails": {"type": "array", "items": _THREAD},
                "tone": {"type": "string"},
            },
        },
        {
            "type": "object",
            "required": ["messages", "count"],
            "properties": {
                "messages": {"type": "array", "items": _DRAFT},
                "count": {"type": "integer"},
            },
        },
    ),
    "rewrite": (
        {
            "type": "object",
            "required": ["instruction"],
            "additionalProperties": False,
            "properties": {"instruction": {"type": "string", "minLength": 1}},
        },
        _TEXT,
    ),
}


def plan(arguments: dict[str, Any]) -> dict[str, Any]:
    lines = [f"Plan: {arguments['instruction']}"]
    if "calendar" in arguments:
        events = arguments["calendar"]["items"]
        lines.append("Events: " + ", ".join(f"{e['start']} {e['title']}" for e in events))
    if "weather" in arguments:
        lines.append(f"Weather: {arguments['weather']['summary']}")
    return {"text": "\n".join(lines)}


def generate_followups(arguments: dict[str, Any]) -> dict[str, Any]:
    tone = arguments["tone"].replace("_", " ")
    messages = [
        {
            "thread_id": email["thread_id"],
            "to": email["to"],
            "subject": f"Re: {email['subject']}",
            "body": f"Hello, a {tone} nudge about {email['subject']}.",
        }
        for email in arguments["emails"]
    ]
    return {"messages": messages, "count": len(messages)}


def rewrite(arguments: dict[str, Any]) -> dict[str, Any]:
    return {"text": f"Rewritten: {arguments['instruction']}"}


@dataclass
class LlmStandIn:
    """An ASGI app answering POST /plan, /generate_followups and /rewrite; records each call."""

    received: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = field(
        default_factory=lambda: {
            "plan": plan,
            "generate_followups": generate_followups,
            "rewrite": rewrite,
        }
    )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        name = scope["path"].strip("/")
        arguments = json.loads(body)
        self.received.append(
            {"tool": name, "arguments": arguments, "key": headers.get("idempotency-key")}
        )
        answer = json.dumps(self.answers[name](arguments)).encode()
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
        await send(start)
        await send({"type": "http.response.body", "body": answer})


if __name__ == "__main__":
    server_name, record_file = sys.argv[1], Path(sys.argv[2])
    print(f"{server_name} MCP server on stdio", file=sys.stderr)
    MCP_SERVERS[server_name](record_file).run("stdio")
