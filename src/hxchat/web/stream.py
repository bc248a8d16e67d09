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
no` (`web/sse.py`), a `: ping` comment after 15 s of silence, and a capped lifetime
after which the client reconnects (without a final event, which tells it the stream
was cut, not ended).

A reader costs one wake-up per batch of events and no task of its own: it asks the
log for everything after its cursor (`EventLog.read_batch`), waiting a few seconds at
most, so the same loop also notices silence (pings, the store check below).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

from hxchat.broker.base import EventLog, Position
from hxchat.domain import EventKind, LogEvent, MessageStatus, Role, Source, merge_sources
from hxchat.errors import BrokerUnavailable, StoreUnavailable
from hxchat.metrics import Metrics
from hxchat.render.view import StreamView
from hxchat.store.base import Generation, Message, Store
from hxchat.web import sse
from hxchat.web.sse import EventStreamResponse
from hxchat.web.templating import Templates

FRAME_INTERVAL = 0.05  # at most 20 frames a second per browser stream
PING_SECONDS = 15
QUIET_CHECK = 5.0  # a stream quiet for this long asks the store whether the answer ended
BROKER_RETRY = 1.0  # seconds before a stream asks an unreachable broker again
REBUILT_DELTA_ID = "0"
REBUILT_END_ID = "end"
SINK_EVENT = None  # the tail's text goes as unnamed ("message") events: the most frequent


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
    silently when `lifetime` runs out. An empty batch means "nothing for
    `PING_SECONDS`": time for a ping.

    A generation can end without its final event reaching the log (the broker was
    away when it ended, or its worker died between storing the end and appending it).
    So a stream that has been quiet asks the store, and when the store has said twice
    in a row that the answer is over, ends with the final event rebuilt from it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + lifetime
    quiet = min(QUIET_CHECK, PING_SECONDS)
    cursor = after
    next_frame = 0.0
    last_yield = loop.time()
    ended_in_store = False
    while True:
        # Coalescing sleeps first, then takes what came meanwhile at once: while an
        # answer streams, a frame costs one timer and no wake-up by the writer.
        delay = next_frame - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        try:
            batch = await log.read_batch(generation_id, cursor, min(remaining, quiet))
        except BrokerUnavailable:
            # To the reader the broker's absence is silence: pings go on and the log is
            # asked again shortly. Not the store: what the log holds may be ahead of
            # what this reader got, and it resumes from there once the broker is back.
            await asyncio.sleep(min(BROKER_RETRY, remaining))
            if loop.time() - last_yield >= PING_SECONDS:
                last_yield = loop.time()
                yield []
            continue
        if batch is None:
            return
        if not batch:
            if loop.time() >= deadline:
                return
            stored = await _stored_end(store, generation_id)
            if stored is not None and ended_in_store:
                yield [stored]
                return
            ended_in_store = stored is not None
            if loop.time() - last_yield >= PING_SECONDS:
                last_yield = loop.time()
                yield batch
            continue
        ended_in_store = False
        yield batch  # nothing follows a final event in a log
        if batch[-1].kind.is_final:
            return
        cursor = batch[-1].id
        last_yield = loop.time()
        next_frame = last_yield + interval


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
        sse.event(json.dumps(e.data, ensure_ascii=False), e.kind.value, e.id) for e in events
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

            async def once() -> AsyncGenerator[bytes, None]:
                yield encode(events)

            return EventStreamResponse(once(), metrics, "json")

    async def follow() -> AsyncGenerator[bytes, None]:
        async for batch in batches(log, store, generation.id, last_event_id, lifetime=lifetime):
            yield encode(batch) if batch else sse.PING

    return EventStreamResponse(follow(), metrics, "json")


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
    used_tools: bool = False

    def apply(self, event: LogEvent) -> None:
        data: dict[str, Any] = dict(event.data)
        if event.kind is EventKind.DELTA:
            self.view.feed(str(data.get("text", "")))
        elif event.kind is EventKind.TOOL_CALL:
            self.used_tools = True
            self.activity = _activity(str(data.get("name", "")), data.get("arguments") or {})
            self.activity_changed = True
        elif event.kind is EventKind.TOOL_RESULT:
            self.used_tools = True
            found = data.get("sources") or []
            merge_sources(
                self.sources,
                (Source(str(s.get("title") or s.get("url")), str(s.get("url"))) for s in found),
            )
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
) -> AsyncGenerator[bytes, None]:
    """Snapshot, then coalesced appends, then the finished article. Every event
    carries the id of the last log event it shows (CONTRACT.md); a reconnect after the
    end, with the end's id, gets 204."""
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
        if not batch:
            yield sse.PING
            continue
        for event in batch:
            answer.apply(event)
        last = batch[-1]
        if last.kind.is_final:
            if answer.used_tools:  # Google's chip comes with grounding; stored at the end
                stored = await store.get_generation(generation.id)
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
            yield sse.event(sse.compact_html(html), "frame", last.id)
        else:
            chunk = _update_events(templates, answer, message.id, last.id)
            if chunk:  # a batch can change nothing a reader sees (e.g. an empty delta)
                yield chunk
        answer.activity_changed = answer.sources_changed = False


def _update_events(
    templates: Templates, answer: BrowserAnswer, message_id: int, event_id: str
) -> bytes:
    """One frame as a few small events, each swapped by the element that listens to
    it (`b`: the body, `r`: the tail, `s`: the text of a plain-text tail's sink,
    unnamed: appended to the tail's sink), so that the text that streams carries no
    markup around it; activity and sources go out of band."""
    update = answer.view.take()
    events = []
    if update.blocks_html:
        events.append(sse.event(sse.compact_html(update.blocks_html), "b", event_id))
    if update.tail_html is not None:
        events.append(sse.event(sse.compact_html(update.tail_html), "r", event_id))
    if update.sink_html is not None:
        events.append(sse.event(update.sink_html, "s", event_id))
    if update.append:
        events.append(sse.event(update.append, SINK_EVENT, event_id))
    if answer.activity_changed or answer.sources_changed:
        html = templates.macro(
            "_frames.html",
            "side",
            message_id,
            answer.activity if answer.activity_changed else None,
            answer.sources if answer.sources_changed else None,
        )
        events.append(sse.event(sse.compact_html(html), "frame", event_id))
    return b"".join(events)


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
            events.append(sse.event(sse.compact_html(rest), "b", event_id))
        body = templates.macro("_frames.html", "end", final, None)
    else:
        body = templates.macro("_frames.html", "end", final, html)
    events.append(sse.event(sse.compact_html(body), "end", event_id))
    return b"".join(events)
