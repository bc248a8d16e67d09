"""The JSON event stream of a generation (`/api/generations/{id}/events`), for programs.

The log's events as they are, with the log's ids: `Last-Event-ID` resumes after that
id; after the final event a reconnect gets 204. When the log has expired, the stream is
rebuilt from the stored message. Following the log (pings, the store check, a capped
lifetime after which the client reconnects) is `broker/follow.py`'s.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Iterable

from starlette.responses import Response

from hxchat.broker.base import EventLog, Position
from hxchat.broker.follow import REBUILT_DELTA_ID, batches, rebuilt_events, wait_for_log_or_end
from hxchat.domain import LogEvent
from hxchat.metrics import Metrics
from hxchat.store.base import Generation, Store
from hxchat.web import sse
from hxchat.web.sse import EventStreamResponse

# `json.dumps(data, ensure_ascii=False)` builds a new encoder at every call (any
# argument but the defaults does): one made once writes the same text, for less.
_JSON = json.JSONEncoder(ensure_ascii=False).encode


def encode(events: Iterable[LogEvent]) -> bytes:
    return b"".join(sse.event(_JSON(e.data), e.kind.value, e.id) for e in events)


async def json_events(
    store: Store,
    log: EventLog,
    generation: Generation,
    last_event_id: str | None,
    lifetime: float,
    metrics: Metrics,
) -> Response:
    """The JSON event stream of a generation: its log's events, or the stored answer's."""
    position = await log.position(generation.id, last_event_id)
    if position is Position.AT_END:
        return Response(status_code=204)
    if position is Position.MISSING:
        generation = await wait_for_log_or_end(store, log, generation, lifetime)
        if await log.position(generation.id) is Position.MISSING:
            events = rebuilt_events(generation)
            if last_event_id is not None and last_event_id == events[-1].id:
                return Response(status_code=204)
            if last_event_id == REBUILT_DELTA_ID:
                events = events[-1:]

            async def once() -> AsyncGenerator[bytes, None]:
                yield encode(events)

            return EventStreamResponse(once(), metrics, "json")

    async def follow() -> AsyncGenerator[bytes, None]:
        async for batch in batches(log, store, generation.id, last_event_id, lifetime=lifetime):
            yield encode(batch) if batch else sse.PING

    return EventStreamResponse(follow(), metrics, "json")
