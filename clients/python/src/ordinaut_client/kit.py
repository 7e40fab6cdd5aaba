"""Typed handlers for `ordinaut:events` with FastStream (needs the ``faststream`` extra).

::

    events = OrdinautEvents(os.environ["ORDINAUT_REDIS_URL"], group="billing", consumer="b-1")
    app = events.app

    @events.on
    async def on_run_dead(event: RunDead) -> None: ...

Run it with ``faststream run billing:app``. One FastStream subscriber reads the stream in the
consumer group and hands each entry to the handlers whose annotation accepts its type (a
model, a union of models, or ``AnyEvent``), in the stream's order, one entry at a time. The
entry is acknowledged after every handler returned; one that raises leaves it pending (Redis
has no negative acknowledgement). Entries no handler wants are acknowledged too. A handler may
take a second argument, the entry's ``Entry`` (position, stream, version, meta, recorded_at).

On start (before FastStream reads new entries) the app creates the group if it is missing, at
``start`` (``"$"``: new entries only; ``"0"``: all the stream still holds), then hands over
the entries this consumer was given but never acknowledged (a stop mid-batch, a crash), in
order: FastStream alone reads only new entries, and those would be lost to it.
"""

from __future__ import annotations

import inspect
import json
import logging
import typing
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as redis
from faststream import AckPolicy, FastStream
from faststream.redis import RedisBroker, StreamSub
from faststream.redis.annotations import RedisStreamMessage
from faststream.specification import AsyncAPI
from pydantic import BaseModel

from ordinaut_client.events import EVENT_MODELS, AnyEvent, Entry, Event, parse_event
from ordinaut_client.ingest import INGEST_STREAM

EVENTS_STREAM = "ordinaut:events"
H = TypeVar("H", bound=Callable[..., Awaitable[None]])
_log = logging.getLogger("ordinaut_client.kit")


class OrdinautEvents:
    """One consumer (``consumer``: unique per process) of ``group`` on the events stream.

    ``broker`` lets several subscriptions share one RedisBroker (it must reach ``url``).
    """

    def __init__(
        self,
        url: str,
        *,
        group: str,
        consumer: str,
        broker: RedisBroker | None = None,
        stream: str = EVENTS_STREAM,
        start: str = "$",
        max_records: int = 100,
        polling_interval: int = 1000,
    ) -> None:
        self.url, self.group, self.consumer, self.stream = url, group, consumer, stream
        self.start, self.max_records = start, max_records
        self.broker = broker or RedisBroker(url)
        self._app: FastStream | None = None
        self._handlers: list[tuple[tuple[type[BaseModel], ...], Callable[..., Any], bool]] = []
        subscriber = self.broker.subscriber(
            stream=StreamSub(
                stream,
                group=group,
                consumer=consumer,
                max_records=max_records,
                polling_interval=polling_interval,
            ),
            ack_policy=AckPolicy.REJECT_ON_ERROR,
            title=f"{stream}:{group}",
            description="Every event Ordinaut records, in log order; the entry's `data` field "
            "is the event (JSON), its other fields say where it sits: position, stream, version, "
            "meta, recorded_at.",
        )
        subscriber(self._dispatch)

    @property
    def app(self) -> FastStream:
        """The FastStream app to run (``faststream run module:app``)."""
        if self._app is None:
            self._app = FastStream(self.broker, on_startup=[self.recover])
        return self._app

    def on(self, handler: H) -> H:
        """Register ``handler`` for the event types its first parameter's annotation names."""
        hints = typing.get_type_hints(handler)
        parameters = list(inspect.signature(handler).parameters)
        if not parameters or parameters[0] not in hints:
            raise TypeError(f"{handler.__name__}: annotate the event parameter, e.g. RunDead")
        types = _event_types(hints[parameters[0]])
        self._handlers.append((types, handler, len(parameters) > 1))
        return handler

    async def recover(self) -> None:
        """Create the group if missing, then deliver this consumer's unacknowledged entries."""
        async with redis.Redis.from_url(self.url) as client:
            try:
                await client.xgroup_create(self.stream, self.group, id=self.start, mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            after = "0"
            while True:
                reply: Any = await client.xreadgroup(
                    self.group, self.consumer, {self.stream: after}, count=self.max_records
                )
                entries = reply[0][1] if reply else []
                if not entries:
                    return
                for entry_id, fields in entries:
                    after = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    if not fields:  # trimmed away while pending: nothing left to deliver
                        await client.xack(self.stream, self.group, after)
                        continue
                    try:
                        await self._deliver(parse_event(fields[b"data"]), fields)
                    except Exception:
                        _log.exception("handler failed; entry %s stays pending", after)
                        continue
                    await client.xack(self.stream, self.group, after)

    async def _dispatch(self, event: Event, message: RedisStreamMessage) -> None:
        await self._deliver(event, message.raw_message["data"])

    async def _deliver(self, event: AnyEvent, fields: dict[bytes, bytes]) -> None:
        entry: Entry | None = None
        for types, handler, wants_entry in self._handlers:
            if isinstance(event, types):
                if wants_entry:
                    entry = entry or _entry(fields)
                    await handler(event, entry)
                else:
                    await handler(event)


def _event_types(annotation: Any) -> tuple[type[BaseModel], ...]:
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    found = typing.get_args(annotation) or (annotation,)
    known = set(EVENT_MODELS.values())
    if not all(isinstance(t, type) and t in known for t in found):
        raise TypeError(f"{annotation!r}: not an Ordinaut event type (ordinaut_client.events)")
    return tuple(found)


def _entry(fields: dict[bytes, bytes]) -> Entry:
    text = {k.decode(): v.decode() for k, v in fields.items() if k != b"data"}
    return Entry.model_validate_json(_json_fields(text))


def _json_fields(text: dict[str, str]) -> str:
    values: dict[str, Any] = dict(text)
    values["meta"] = json.loads(text.get("meta") or "{}")
    return json.dumps(values)


class IngestEntry(BaseModel):
    """An `ordinaut:ingest` entry's fields (publish with ordinaut_client.ingest.publish_event)."""

    topic: str
    payload: str
    source: str | None = None
    idempotency_key: str | None = None
    occurred_at: str | None = None
    traceparent: str | None = None


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI document of Ordinaut's streams, as FastStream describes this kit."""
    events = OrdinautEvents("redis://localhost:6379", group="<group>", consumer="<consumer>")
    events.broker.publisher(
        stream=INGEST_STREAM,
        title=INGEST_STREAM,
        schema=IngestEntry,
        description="External events to record (the ingest consumer group reads them). An "
        "entry's fields are the schema's properties, each a string; `payload` is a JSON object "
        "as text. Refused entries go to `ordinaut:dead` with the reason.",
    )
    spec = AsyncAPI(
        events.broker, title="Ordinaut streams", version="0.1.0", schema_version="3.0.0"
    )
    document: dict[str, Any] = spec.to_specification().to_jsonable()
    return document


if __name__ == "__main__":
    # The server serves this document (GET /schema/asyncapi.json) from services/api/asyncapi.json.
    print(json.dumps(asyncapi_document(), indent=2, sort_keys=True))
