"""The event streams: JSON events for programs, HTML frames for the browser page.

Both are readers of the event log (DESIGN.md): they replay and then follow; they never
drive the model, so a slow or vanished client cannot stall a generation.

- JSON (`/api/generations/{id}/events`): the log's events as they are, with the log's
  ids; `Last-Event-ID` resumes after that id; after the final event a reconnect gets
  204. When the log has expired, the stream is rebuilt from the stored message.
- Browser (`/generations/{id}/stream`): htmx's SSE extension may reconnect without
  `Last-Event-ID` (htmx-extensions#184), so every connection starts with a snapshot
  of the whole answer so far (swapped in whole, hence idempotent), then follows with
  appends. Frames are coalesced to at most 20 a second; finished Markdown blocks are
  rendered once and appended; the unfinished block grows as escaped text; the final
  frame swaps in the finished article, rendered once, and ends the connection.

Streams are proxy-safe: `Cache-Control: no-cache, no-transform`, `X-Accel-Buffering:
no`, a `: ping` comment every 15 s, and a capped lifetime after which the client
reconnects (without a final event, which tells it the stream was cut, not ended).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.responses import Response

from hxchat.broker.base import EventLog, Position
from hxchat.domain import EventKind, LogEvent, MessageStatus, Role, Source
from hxchat.errors import StoreUnavailable
from hxchat.metrics import Metrics
from hxchat.render.view import StreamView
from hxchat.store.base import Generation, Message, Store
from hxchat.web.templating import Templates

FRAME_INTERVAL = 0.05  # at most 20 frames a second per browser stream
PING_SECONDS = 15
SEND_TIMEOUT = 30  # a client that accepts nothing for this long is dropped
QUIET_CHECK = 5.0  # a stream quiet for this long asks the store whether the answer ended
REBUILT_DELTA_ID = "0"
REBUILT_END_ID = "end"
SSE_HEADERS = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}


def _ping() -> ServerSentEvent:
    return ServerSentEvent(comment="ping")


def event_stream_response(content: AsyncIterator[bytes], metrics: Metrics, kind: str) -> Response:
    async def counted() -> AsyncIterator[bytes]:
        gauge = metrics.active_streams.labels(kind=kind)
        gauge.inc()
        try:
            async for chunk in content:
                yield chunk
        finally:
            gauge.dec()

    return EventSourceResponse(
        counted(),
        ping=PING_SECONDS,
        ping_message_factory=_ping,
        headers=SSE_HEADERS,
        send_timeout=SEND_TIMEOUT,
    )


async def batches(
    log: EventLog,
    store: Store,
    generation_id: str,
    after: str | None,
    *,
    lifetime: float,
    interval: float = 0,
) -> AsyncIterator[list[LogEvent]]:
    """The log's events grouped by what is available at once (a replay comes as one
    big batch), at most one batch per `interval`; ends after the final event, or
    silently when `lifetime` runs out.

    A generation can end without its final event reaching the log (the broker was
    away when it ended, or its worker died between storing the end and appending it).
    So a stream that has been quiet asks the store, and when the store has said twice
    in a row that the answer is over, ends with the final event rebuilt from it.
    """
    queue: asyncio.Queue[LogEvent | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for event in log.read(generation_id, after):
                queue.put_nowait(event)
        finally:
            queue.put_nowait(None)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + lifetime
    reader = asyncio.create_task(pump())
    next_frame = 0.0
    ended_in_store = False
    try:
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                async with asyncio.timeout(min(remaining, QUIET_CHECK)):  # not wait_for: gh-86296
                    first = await queue.get()
            except TimeoutError:
                if loop.time() >= deadline:
                    return
                stored = await _stored_end(store, generation_id)
                if stored is not None and ended_in_store:
                    yield [stored]
                    return
                ended_in_store = stored is not None
                continue
            if first is None:
                reader.result()  # re-raise what ended the reader, if anything
                return
            if interval and not first.kind.is_final:
                delay = next_frame - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            batch = [first]
            while not queue.empty():
                item = queue.get_nowait()
                if item is None:
                    queue.put_nowait(None)
                    break
                batch.append(item)
            yield batch
            next_frame = loop.time() + interval
            if batch[-1].kind.is_final:
                return
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def _stored_end(store: Store, generation_id: str) -> LogEvent | None:
    """The final event as the store knows it, once the answer has ended there."""
    try:
        generation = await store.get_generation(generation_id)
    except StoreUnavailable:
        return None
    if generation is None or generation.status is MessageStatus.STREAMING:
        return None
    return rebuilt_events(generation)[-1]


async def wait_for_log_or_end(
    store: Store, log: EventLog, generation: Generation, lifetime: float
) -> Generation:
    """A generation that is streaming but has no log yet (being created, or its worker
    died): wait until its log appears or the store says it ended."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + lifetime
    while generation.status is MessageStatus.STREAMING and loop.time() < deadline:
        await asyncio.sleep(0.5)
        if await log.position(generation.id) is not Position.MISSING:
            break
        generation = await store.get_generation(generation.id) or generation
    return generation


def rebuilt_events(generation: Generation) -> list[LogEvent]:
    """A finished generation's events, made again from the stored message."""
    events = []
    if generation.content:
        events.append(LogEvent(REBUILT_DELTA_ID, EventKind.DELTA, {"text": generation.content}))
    if generation.sources:
        events.append(
            LogEvent(
                REBUILT_DELTA_ID,
                EventKind.TOOL_RESULT,
                {"name": "web_search", "sources": [s.as_json() for s in generation.sources]},
            )
        )
    end_id = generation.final_event_id or REBUILT_END_ID
    if generation.status in (MessageStatus.ERROR, MessageStatus.INTERRUPTED):
        message = generation.error or "The answer failed."
        events.append(LogEvent(end_id, EventKind.ERROR, {"message": message}))
    else:
        status = (
            generation.status.value
            if generation.status is not MessageStatus.STREAMING
            else MessageStatus.INTERRUPTED.value
        )
        data = {"message_id": generation.message_id, "status": status}
        events.append(LogEvent(end_id, EventKind.DONE, data))
    return events


def encode(events: Iterable[LogEvent]) -> bytes:
    return b"".join(
        ServerSentEvent(data=json.dumps(dict(e.data)), event=e.kind.value, id=e.id).encode()
        for e in events
    )


async def json_events(
    store: Store,
    log: EventLog,
    generation: Generation,
    last_event_id: str | None,
    lifetime: float,
    metrics: Metrics,
) -> Response:
    """The JSON event stream of a generation (CONTRACT.md "Event stream")."""
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

            async def once() -> AsyncIterator[bytes]:
                yield encode(events)

            return event_stream_response(once(), metrics, "json")

    async def follow() -> AsyncIterator[bytes]:
        async for batch in batches(log, store, generation.id, last_event_id, lifetime=lifetime):
            yield encode(batch)

    return event_stream_response(follow(), metrics, "json")


# -- the browser's stream ----------------------------------------------------------


@dataclass
class BrowserAnswer:
    """What a browser stream knows of the answer it shows."""

    message: Message
    view: StreamView = field(default_factory=StreamView)
    activity: str = ""
    sources: list[Source] = field(default_factory=list)
    sources_changed: bool = False
    activity_changed: bool = False
    status: MessageStatus = MessageStatus.STREAMING
    error: str | None = None
    suggestions: str | None = None

    def apply(self, event: LogEvent) -> None:
        data: dict[str, Any] = dict(event.data)
        if event.kind is EventKind.DELTA:
            self.view.feed(str(data.get("text", "")))
        elif event.kind is EventKind.TOOL_CALL:
            self.activity = _activity(str(data.get("name", "")), data.get("arguments") or {})
            self.activity_changed = True
        elif event.kind is EventKind.TOOL_RESULT:
            seen = {s.url for s in self.sources}
            for item in data.get("sources") or []:
                source = Source(str(item.get("title") or item.get("url")), str(item.get("url")))
                if source.url not in seen:
                    seen.add(source.url)
                    self.sources.append(source)
            self.activity, self.activity_changed, self.sources_changed = "", True, True
        elif event.kind is EventKind.DONE:
            self.status = MessageStatus(str(data.get("status", "complete")))
        elif event.kind is EventKind.ERROR:
            self.status = MessageStatus.ERROR
            self.error = str(data.get("message") or "The answer failed.")

    def final_message(self, text: str) -> Message:
        m = self.message
        return Message(
            id=m.id,
            conversation_id=m.conversation_id,
            role=Role.ASSISTANT,
            content=text,
            status=self.status,
            sources=tuple(self.sources),
            generation_id=m.generation_id,
            error=self.error,
            search_suggestions=self.suggestions,
        )


def _activity(name: str, arguments: dict[str, Any]) -> str:
    query = arguments.get("query") or " ".join(arguments.get("queries") or [])
    if query:
        return f"Searching the web for “{query}”…"
    return f"Running {name}…" if name else "Working…"


async def browser_frames(
    store: Store,
    log: EventLog,
    templates: Templates,
    message: Message,
    generation: Generation,
    lifetime: float,
) -> AsyncIterator[bytes]:
    """Snapshot, then coalesced appends, then the finished article."""
    answer = BrowserAnswer(message=message)
    if await log.position(generation.id) is Position.MISSING:
        generation = await wait_for_log_or_end(store, log, generation, lifetime)
    if await log.position(generation.id) is Position.MISSING:
        for event in rebuilt_events(generation):
            answer.apply(event)
        answer.suggestions = generation.search_suggestions
        yield _end_frame(templates, answer, REBUILT_END_ID)
        return
    first = True
    async for batch in batches(
        log, store, generation.id, None, lifetime=lifetime, interval=FRAME_INTERVAL
    ):
        for event in batch:
            answer.apply(event)
        last = batch[-1]
        if last.kind.is_final:
            stored = await store.get_generation(generation.id)  # finished before `done`
            answer.suggestions = stored.search_suggestions if stored else None
            yield _end_frame(templates, answer, last.id, streamed=not first)
            return
        if first:
            blocks, tail = answer.view.snapshot()
            html = templates.macro(
                "_frames.html",
                "snapshot",
                message.id,
                blocks,
                tail,
                answer.activity,
                answer.sources,
            )
            first = False
            yield ServerSentEvent(data=html, event="frame", id=last.id).encode()
        else:
            chunk = _update_events(templates, answer, message.id, last.id)
            if chunk:  # a batch can change nothing a reader sees (e.g. an empty delta)
                yield chunk
        answer.activity_changed = answer.sources_changed = False


def _update_events(
    templates: Templates, answer: BrowserAnswer, message_id: int, event_id: str
) -> bytes:
    """One frame as a few small events, each swapped by the element that listens to
    it (`b`: the body, `r`: the tail, `t`: the tail's sink), so that the text that
    streams carries no markup around it; activity and sources go out of band."""
    update = answer.view.take()
    events = []
    if update.blocks_html:
        events.append(ServerSentEvent(data=update.blocks_html, event="b", id=event_id))
    if update.tail_html is not None:
        events.append(ServerSentEvent(data=update.tail_html, event="r", id=event_id))
    if update.append:
        events.append(ServerSentEvent(data=update.append, event="t", id=event_id))
    if answer.activity_changed or answer.sources_changed:
        html = templates.macro(
            "_frames.html",
            "side",
            message_id,
            answer.activity if answer.activity_changed else None,
            answer.sources if answer.sources_changed else None,
        )
        events.append(ServerSentEvent(data=html, event="frame", id=event_id))
    return b"".join(e.encode() for e in events)


def _end_frame(
    templates: Templates, answer: BrowserAnswer, event_id: str, *, streamed: bool = False
) -> bytes:
    """The finished article. When the blocks the browser has are the start of the
    whole answer rendered at once, only the rest is sent and the body is kept
    (`hx-preserve`); otherwise (or when this connection sent no snapshot, so the body
    may hold anything) the whole article is sent."""
    html = answer.view.finish()
    final = answer.final_message(answer.view.renderer.text)
    rest = answer.view.finish_rest(html) if streamed else None
    events = []
    if rest is not None:
        if rest:
            events.append(ServerSentEvent(data=rest, event="b", id=event_id))
        body = templates.macro("_frames.html", "end", final, None)
    else:
        body = templates.macro("_frames.html", "end", final, html)
    events.append(ServerSentEvent(data=body, event="end", id=event_id))
    return b"".join(e.encode() for e in events)
