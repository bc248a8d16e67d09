"""The browser's stream of an answer (`/generations/{id}/stream`): HTML frames.

htmx's SSE extension may reconnect without `Last-Event-ID` (htmx-extensions#184), so
every connection starts with a snapshot of the whole answer so far (swapped in whole,
hence idempotent), then follows with appends. Frames are coalesced to at most 20 a
second; finished Markdown blocks are rendered once and appended; the unfinished block
grows as escaped text; the final frame swaps in the finished article, rendered once,
and ends the connection. The events' names, and which element swaps each, are
`web/wire.py`'s.

Streams are proxy-safe: `Cache-Control: no-cache, no-transform`, `X-Accel-Buffering:
no` (`web/sse.py`), a `: ping` comment after 15 s of silence, and a capped lifetime
after which the client reconnects (without a final event, which tells it the stream
was cut, not ended). Following the log is `broker/follow.py`'s.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from hxchat.broker.base import EventLog, Position
from hxchat.broker.follow import REBUILT_END_ID, batches, rebuilt_events, wait_for_log_or_end
from hxchat.domain import (
    FRAME_INTERVAL,
    EventKind,
    LogEvent,
    MessageStatus,
    Role,
    Source,
    Timing,
    Usage,
    merge_sources,
)
from hxchat.render.markdown import RENDERER
from hxchat.render.view import StreamView
from hxchat.store.base import Generation, KeptHtml, Message, Rendered, Store
from hxchat.web import answer_html, sse
from hxchat.web.templating import Templates
from hxchat.web.wire import BrowserEvent


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
    usage: Usage | None = None  # what the stored answer cost, read when it has ended
    timing: Timing | None = None

    def ended(self, stored: Generation) -> None:
        """Take from the stored answer what its events do not carry."""
        self.suggestions = stored.search_suggestions
        self.usage, self.timing = stored.usage, stored.timing

    def apply(self, event: LogEvent) -> None:
        data: dict[str, Any] = dict(event.data)
        if event.kind is EventKind.DELTA:
            self.view.feed(str(data.get("text", "")))
        elif event.kind is EventKind.TOOL_CALL:
            self.activity = _activity(str(data.get("name", "")), data.get("arguments") or {})
            self.activity_changed = True
        elif event.kind is EventKind.TOOL_RESULT:
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
            model=m.model,
            usage=self.usage,
            timing=self.timing,
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
    carries the id of the last log event it shows; a reconnect after the
    end, with the end's id, gets 204."""
    answer = BrowserAnswer(message=message)
    if await log.position(generation.id) is Position.MISSING:
        generation = await wait_for_log_or_end(store, log, generation, lifetime)
    if await log.position(generation.id) is Position.MISSING:
        for event in rebuilt_events(generation):
            answer.apply(event)
        answer.ended(generation)
        frame, kept = _end_frame(templates, answer, REBUILT_END_ID)
        yield frame
        await answer_html.keep(store, [kept])
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
            # Its times, and Google's chip (with grounding), are stored at the end.
            stored = await store.get_generation(generation.id)
            if stored is not None:
                answer.ended(stored)
            frame, kept = _end_frame(templates, answer, last.id, streamed=not first)
            yield frame
            # After the frame: the page reloaded later shows this HTML as it is.
            await answer_html.keep(store, [kept])
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
            yield _event(sse.compact_html(html), BrowserEvent.FRAME, last.id)
        else:
            chunk = _update_events(templates, answer, message.id, last.id)
            if chunk:  # a batch can change nothing a reader sees (e.g. an empty delta)
                yield chunk
        answer.activity_changed = answer.sources_changed = False


def _update_events(
    templates: Templates, answer: BrowserAnswer, message_id: int, event_id: str
) -> bytes:
    """One frame as a few small events, each swapped by the element that listens to
    it (`web/wire.py`), so that the text that streams carries no markup around it;
    activity and sources go out of band."""
    update = answer.view.take()
    events = []
    if update.blocks_html:
        events.append(_event(sse.compact_html(update.blocks_html), BrowserEvent.BODY, event_id))
    if update.tail_html is not None:
        events.append(_event(sse.compact_html(update.tail_html), BrowserEvent.TAIL, event_id))
    if update.sink_html is not None:
        events.append(_event(update.sink_html, BrowserEvent.SINK, event_id))
    if update.append:
        events.append(_event(update.append, BrowserEvent.APPEND, event_id))
    if answer.activity_changed or answer.sources_changed:
        html = templates.macro(
            "_frames.html",
            "side",
            message_id,
            answer.activity if answer.activity_changed else None,
            answer.sources if answer.sources_changed else None,
        )
        events.append(_event(sse.compact_html(html), BrowserEvent.FRAME, event_id))
    return b"".join(events)


def _end_frame(
    templates: Templates, answer: BrowserAnswer, event_id: str, *, streamed: bool = False
) -> tuple[bytes, KeptHtml]:
    """The finished article, and its HTML for the store to keep. When the blocks the
    browser has are the start of the whole answer rendered at once, only the rest is
    sent and the body is kept (`hx-preserve`); otherwise (or when this connection sent
    no snapshot, so the body may hold anything) the whole article is sent."""
    html = answer.view.finish()
    final = answer.final_message(answer.view.renderer.text())
    kept = KeptHtml(final.id, final.content, Rendered(html, RENDERER))
    rest = answer.view.finish_rest(html) if streamed else None
    events = []
    if rest is not None:
        if rest:
            events.append(_event(sse.compact_html(rest), BrowserEvent.BODY, event_id))
        body = templates.macro("_frames.html", "end", final, None)
    else:
        body = templates.macro("_frames.html", "end", final, html)
    events.append(_event(sse.compact_html(body), BrowserEvent.END, event_id))
    return b"".join(events), kept


def _event(data: str, kind: BrowserEvent, event_id: str) -> bytes:
    return sse.event(data, kind.field, event_id)
