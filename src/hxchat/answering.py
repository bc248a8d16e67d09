"""One answer, from the model to the event log and the store.

`AnswerWriter.run` consumes the model's events for one answer: each is appended to
the event log first, then recorded in the `Answer` (what the answer holds so far,
which the lease supervisor checkpoints). Text deltas that come within one frame
interval are merged into one event (`pending.PendingText`): the log's work follows
the readers' pace, not the model's. Its end is stored first and then announced to the
readers, both retried with `backoff` while the database or the broker is briefly away.
The end records what the answer cost: the tokens its model reported (`Usage` events,
added up) and its times, measured here; they are stored, sent with `done` and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hxchat import loops
from hxchat.answer import Answer
from hxchat.backoff import Backoff, retrying
from hxchat.broker.base import EventLog
from hxchat.config import Settings
from hxchat.domain import (
    AgentEvent,
    EventKind,
    MessageStatus,
    SearchSuggestions,
    Source,
    TextDelta,
    Timing,
    ToolCall,
    ToolResult,
    Turn,
    Usage,
)
from hxchat.errors import (
    AnswerTooLong,
    AppendUncertain,
    BrokerUnavailable,
    HxchatError,
    ProviderError,
    StoreUnavailable,
)
from hxchat.files.history import Attacher, history_of
from hxchat.metrics import Metrics
from hxchat.pending import PendingText
from hxchat.providers.base import ChatModel
from hxchat.store.base import Store

logger = logging.getLogger(__name__)

INTERRUPTED_BY_SHUTDOWN = "Interrupted: the server was stopped while writing this answer."
# How the end of an answer rides out an outage (the timing chain, docs/architecture.md;
# tests/test_invariants.py checks these against the other timeouts).
END_BACKOFF = (0.5, 10.0)  # seconds: the first wait between two tries, and the longest
STORE_END_ATTEMPTS = 8  # storing the end: about 35 s of waits
FINAL_EVENT_ATTEMPTS = 13  # appending the final event: about a minute and a half
# Tokens a model may give without waiting before the generation lets the event loop
# run (its readers, new requests): a model that waits for the network between tokens
# (every real one) never reaches it within a frame; the echo model at full speed does.
BURST = 64


class AnswerWriter:
    """Runs answers of one worker from the model to the event log and the store."""

    def __init__(
        self,
        *,
        store: Store,
        log: EventLog,
        model: ChatModel,
        settings: Settings,
        metrics: Metrics,
        worker_id: str,
        files: Attacher | None = None,
    ) -> None:
        self.files = files  # where the history's attachments are read from
        self.store = store
        self.log = log
        self.model = model
        self.settings = settings
        self.metrics = metrics
        self.worker_id = worker_id
        self._ticks: loops.Ticks | None = None  # the frame timers of all its answers

    async def run(self, answer: Answer) -> None:
        """Write `answer` to its end: complete, stopped (a cancel request), an error,
        or interrupted (this task cancelled: shutdown). Once its worker has lost it
        (`lost`), nothing more is stored or appended. Text still waiting to be merged
        is appended before the end, whatever the end (`_append_rest`)."""
        gid = answer.started.generation_id
        status, error = MessageStatus.COMPLETE, None
        failure: BaseException | None = None
        cancelled_from_outside = False
        loop = asyncio.get_running_loop()
        ticks = self._ticks = loops.ticks_on(loop, self._ticks)
        pending = PendingText(ticks=ticks)
        append_now = getattr(self.log, "append_now", None)
        if append_now is not None:  # the in-memory log: the timer appends, no task wakes
            pending.append_now = lambda: self._append_due(append_now, gid, answer, pending)
        tasks: list[asyncio.Task[None]] = []
        answer.began = loop.time()
        try:
            history = await history_of(answer.started, self.files)
            work = asyncio.create_task(self._consume(gid, history, answer, pending))
            flush = asyncio.create_task(self._flush_when_due(gid, answer, pending))
            stop = asyncio.create_task(self.log.wait_cancelled(gid))
            tasks = [work, flush, stop]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if flush.done():  # it ends only when an append of merged text failed
                failure = flush.exception()
            elif not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
                status = MessageStatus.STOPPED
            else:
                failure = work.exception()
            if failure is not None:
                status, error = MessageStatus.ERROR, _describe(failure)
        except asyncio.CancelledError:
            cancelled_from_outside = True
            status, error = MessageStatus.INTERRUPTED, INTERRUPTED_BY_SHUTDOWN
        except HxchatError as exc:  # the store or broker failed before the model ran
            status, error = MessageStatus.ERROR, exc.detail
        finally:
            pending.append_now = None  # a timer still armed appends nothing from now on
            for task in tasks:
                if not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
        if not answer.lost:
            status, error = await self._append_rest(gid, answer, pending, status, error)
            await self._finalize(gid, answer, status, error)
        if cancelled_from_outside:
            raise asyncio.CancelledError

    async def _consume(
        self, gid: str, history: list[Turn], answer: Answer, pending: PendingText
    ) -> None:
        loop = asyncio.get_running_loop()
        model = answer.model or self.model
        events = model.stream(history, instructions=answer.started.instructions)
        most = self.settings.max_answer_chars
        try:
            async for event in events:
                if not isinstance(event, TextDelta):
                    await self._publish(gid, event, answer, pending)
                    continue
                text = event.text  # text: the per-token path, no coroutine of its own
                if not text:
                    continue
                if pending.chars == 0 and answer.chars == 0:
                    waited = loop.time() - answer.began
                    answer.first_text_ms = _ms(waited)
                    self.metrics.first_text(model.name, waited)
                if answer.chars + pending.chars + len(text) > most:
                    raise AnswerTooLong(f"The answer was cut off at {most:,} characters.")
                # Pending now, not yet in the kept answer: `_flush_when_due` appends it
                # when the interval is over, merged with whatever text came meanwhile.
                if pending.add(text):  # the first text, or the first after a quiet interval
                    async with pending.lock:
                        await self._append_text(gid, answer, pending)
                elif len(pending.parts) % BURST == 0:
                    await asyncio.sleep(0)  # a model that never waits lets readers run
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _publish(
        self, gid: str, event: AgentEvent, answer: Answer, pending: PendingText
    ) -> None:
        """Append one model event other than text to the event log, then record it in
        the answer: the stored text is never ahead of what readers can get, nor behind
        it. A tool call or a tool result is never delayed: the pending text
        (in `_consume`) is appended first, then it.

        A Stop (or shutdown) that cancels this while an append is under way still
        records it: the append is on its way (the Redis log sends a queued command
        whether or not its caller still waits; the in-memory one cannot be interrupted),
        so readers will see it, and the kept answer must hold it too. So does an append
        cut off by a broker outage (`AppendUncertain`): the log sends it again before
        the final event."""
        if isinstance(event, ToolCall):
            data = {"name": event.name, "arguments": dict(event.arguments)}
            async with pending.lock:
                await self._append_text(gid, answer, pending)
                await self._append(gid, pending, EventKind.TOOL_CALL, data, lambda: None)
        elif isinstance(event, ToolResult):
            sources = event.sources
            found = {"name": event.name, "sources": [s.as_json() for s in sources]}
            async with pending.lock:
                await self._append_text(gid, answer, pending)
                await self._append(
                    gid, pending, EventKind.TOOL_RESULT, found, lambda: answer.add_sources(sources)
                )
        elif isinstance(event, SearchSuggestions):
            answer.suggestions = event.html
        elif isinstance(event, Usage):
            answer.usage = event if answer.usage is None else answer.usage + event

    async def _flush_when_due(self, gid: str, answer: Answer, pending: PendingText) -> None:
        """Append the pending text once it is due, merged into one event; the model may
        well pause right after a token. Runs beside `_consume` until the answer ends;
        it ends by itself only when an append fails."""
        while True:
            await pending.wait()
            async with pending.lock:
                if pending.is_due():  # else it was appended meanwhile: wait again
                    await self._append_text(gid, answer, pending)

    def _append_due(
        self,
        append_now: Callable[[str, EventKind, Mapping[str, Any]], str],
        gid: str,
        answer: Answer,
        pending: PendingText,
    ) -> bool:
        """The merged text, appended by its timer with a log that never waits (see
        `PendingText.append_now`); append and record happen together, as in `_append`.
        False leaves it to `_flush_when_due`: while the lock is held (text and tool
        calls keep their order), after a failure, or when this append fails (it is
        tried there again, and fails there as every append does)."""
        if not pending.parts or answer.lost:  # a lost answer appends nothing more
            return True
        if pending.lock.locked() or pending.failure is not None:
            return False
        text = pending.take()
        try:
            append_now(gid, EventKind.DELTA, {"text": text})
        except BrokerUnavailable:
            pending.put_back(text)
            return False
        answer.add_text(text)
        return True

    async def _append_text(self, gid: str, answer: Answer, pending: PendingText) -> None:
        """Append all the pending text as one `delta` (the caller holds `pending.lock`)."""
        if pending.parts:
            text = pending.take()
            data = {"text": text}
            await self._append(gid, pending, EventKind.DELTA, data, lambda: answer.add_text(text))

    async def _append_rest(
        self,
        gid: str,
        answer: Answer,
        pending: PendingText,
        status: MessageStatus,
        error: str | None,
    ) -> tuple[MessageStatus, str | None]:
        """Append the text still pending when the answer ends (the model finished, a
        Stop, an error, shutdown), so that readers and the kept answer have every word
        the model gave. If the log refuses it (or an append failed before), the answer
        ends in error without it."""
        try:
            await self._append_text(gid, answer, pending)
        except BrokerUnavailable as exc:  # an uncertain append is recorded, and resent
            if status is MessageStatus.COMPLETE or status is MessageStatus.STOPPED:
                return MessageStatus.ERROR, exc.detail
        return status, error

    async def _append(
        self,
        gid: str,
        pending: PendingText,
        kind: EventKind,
        data: Mapping[str, Any],
        record: Callable[[], None],
    ) -> None:
        """Append, then `record` what was appended; also when this is cancelled or the
        broker went away mid-append, since the event is then on its way to readers.

        After an append failed, no other is tried (the answer ends in error): one
        would first send the uncertain one again, and if it were cancelled meanwhile
        it would be recorded without being on its way."""
        if pending.failure is not None:
            raise BrokerUnavailable(pending.failure)
        try:
            await self.log.append(gid, kind, data)
        except asyncio.CancelledError:
            record()
            raise
        except BrokerUnavailable as exc:
            pending.failure = exc.detail
            if isinstance(exc, AppendUncertain):
                record()
            raise
        record()

    async def _finalize(
        self, gid: str, answer: Answer, status: MessageStatus, error: str | None
    ) -> None:
        """Store the outcome first, then tell the readers: a client that sees `done`
        can send its next message at once (the conversation is already free)."""
        answer.finishing = True  # storing the end releases the lease: not "taken over"
        answer.status = status
        took = asyncio.get_running_loop().time() - answer.began
        timing = Timing(answer.first_text_ms, _ms(took))
        usage = answer.usage or Usage()
        self.metrics.generations.labels(status=status.value).inc()
        self.metrics.count_tokens((answer.model or self.model).name, usage)
        text, sources, suggestions = answer.text(), answer.sources, answer.suggestions
        await self.store_final(
            gid, text, status, sources, error, suggestions, None, usage=usage, timing=timing
        )
        data: dict[str, object]
        if status is MessageStatus.ERROR or status is MessageStatus.INTERRUPTED:
            kind, data = EventKind.ERROR, {"message": error or "The answer failed."}
        else:
            kind = EventKind.DONE
            data = {
                "message_id": answer.started.assistant_message_id,
                "status": status.value,
                "usage": usage.as_json(),
            }
        appended = await retrying(
            lambda: self.log.append(gid, kind, data),
            BrokerUnavailable,
            attempts=FINAL_EVENT_ATTEMPTS,
            backoff=Backoff(*END_BACKOFF),
        )
        if not appended:  # after about a minute and a half
            # Readers still end: a quiet stream asks the store.
            logger.warning("could not append the final event of generation %s", gid)

    async def store_final(
        self,
        gid: str,
        text: str,
        status: MessageStatus,
        sources: Sequence[Source],
        error: str | None,
        suggestions: str | None,
        final_event_id: str | None,
        *,
        usage: Usage | None = None,
        timing: Timing | None = None,
    ) -> None:
        """Store the outcome; retried while the database is briefly away."""
        stored = await retrying(
            lambda: self.store.finish(
                gid,
                content=text,
                status=status,
                sources=sources,
                error=error,
                search_suggestions=suggestions,
                final_event_id=final_event_id,
                worker_id=self.worker_id,
                usage=usage,
                timing=timing,
            ),
            StoreUnavailable,
            attempts=STORE_END_ATTEMPTS,
            backoff=Backoff(*END_BACKOFF),
        )
        if not stored:
            logger.error("could not store the end of generation %s; a sweeper will mark it", gid)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _describe(exc: BaseException) -> str:
    """A sentence for the user about why the answer failed; details go to the log."""
    if isinstance(exc, ProviderError | HxchatError):
        return exc.detail
    logger.error("generation failed unexpectedly", exc_info=exc)
    return "The model failed unexpectedly; please try again."
