"""One answer, from the model to the event log and the store.

A generation outlives the request that started it (DESIGN.md): `send` stores the
user's message and an assistant placeholder, then a background task owns the model
call. Its events go to the event log, where any number of readers replay and follow
them; its text is checkpointed to the store about once a second together with a
lease that says "this worker is alive". Stop requests come through the event log,
so any worker can stop a generation that runs on another. A generation whose lease
expires (its worker died) is marked `interrupted` by whichever worker sweeps first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hxchat.broker.base import EventLog, Position
from hxchat.config import Settings
from hxchat.domain import (
    AgentEvent,
    EventKind,
    MessageStatus,
    SearchSuggestions,
    Source,
    TextDelta,
    ToolCall,
    ToolResult,
    Turn,
    merge_sources,
)
from hxchat.errors import (
    AppendUncertain,
    BrokerUnavailable,
    HxchatError,
    InvalidMessage,
    MessageTooLong,
    NotFound,
    ProviderError,
    ServiceUnavailable,
    StoreUnavailable,
)
from hxchat.metrics import Metrics
from hxchat.providers.base import ChatModel
from hxchat.store.base import Generation, Store, TurnStarted

logger = logging.getLogger(__name__)

LEASE_SECONDS = 10.0  # a worker that has not renewed for this long is presumed dead
CHECKPOINT_SECONDS = 1.0  # how stale the stored partial text may be
SWEEP_SECONDS = 3.0
INTERRUPTED_BY_SHUTDOWN = "Interrupted: the server was stopped while writing this answer."
INTERRUPTED_BY_CRASH = "Interrupted: the server writing this answer stopped."


class AnswerTooLong(HxchatError):
    default_detail = "The answer was cut off because it grew too long."


@dataclass
class _Answer:
    """What a running generation has produced so far."""

    started: TurnStarted
    owner: str
    parts: list[str] = field(default_factory=list)
    chars: int = 0
    sources: list[Source] = field(default_factory=list)
    suggestions: str | None = None
    lost: bool = False  # another worker swept it: stop without writing anything
    finishing: bool = False  # its end is being stored: no more checkpoints

    @property
    def text(self) -> str:
        if len(self.parts) > 1:
            self.parts[:] = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""

    def add_text(self, text: str) -> None:
        self.parts.append(text)
        self.chars += len(text)

    def add_sources(self, sources: Sequence[Source]) -> None:
        merge_sources(self.sources, sources)


class GenerationRunner:
    """Starts, stops and supervises the generations of this worker."""

    def __init__(
        self,
        *,
        store: Store,
        log: EventLog,
        model: ChatModel,
        settings: Settings,
        metrics: Metrics,
        sweep_live_on_start: bool = False,
    ) -> None:
        self.store = store
        self.log = log
        self.model = model
        self.settings = settings
        self.metrics = metrics
        self.worker_id = uuid.uuid4().hex
        self._sweep_live_on_start = sweep_live_on_start
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._answers: dict[str, _Answer] = {}
        self._maintenance: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Sweep what a crashed predecessor left, then supervise leases."""
        await self._sweep(include_live=self._sweep_live_on_start)
        self._maintenance = asyncio.create_task(self._maintain(), name="hxchat-maintenance")

    async def close(self) -> None:
        """Stop supervising; running generations end `interrupted` with their text."""
        if self._maintenance:
            self._maintenance.cancel()
            await asyncio.gather(self._maintenance, return_exceptions=True)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def generation(self, generation_id: str, owner: str) -> Generation | None:
        """`owner`'s generation, or None. One this worker is writing now comes from
        memory, as the store would show it (its text so far): a stream that starts on
        the worker that writes the answer (always, on one worker) costs no query."""
        answer = self._answers.get(generation_id)
        if answer is None or answer.owner != owner or answer.finishing:
            return await self.store.get_generation(generation_id, owner)
        started = answer.started
        return Generation(
            id=generation_id,
            owner=owner,
            conversation_id=started.conversation_id,
            message_id=started.assistant_message_id,
            status=MessageStatus.STREAMING,
            content=answer.text,
            sources=tuple(answer.sources),
        )

    # -- requests --------------------------------------------------------------------

    def validate(self, content: str) -> str:
        """The message as it will be stored, or a 413/422 error a person can read."""
        limit = self.settings.max_message_chars
        if len(content) > limit:
            raise MessageTooLong(
                f"The message has {len(content):,} characters; the limit is {limit:,}."
            )
        if not content.strip():
            raise InvalidMessage("The message is empty.")
        return content

    async def send(self, owner: str, conversation_id: str, content: str) -> TurnStarted:
        """Store the user's message and start answering it."""
        content = self.validate(content)
        self._check_capacity()
        return await self._start(
            owner,
            lambda gid: self.store.start_turn(
                owner,
                conversation_id,
                content,
                generation_id=gid,
                worker_id=self.worker_id,
                lease_seconds=LEASE_SECONDS,
            ),
        )

    async def retry(self, owner: str, conversation_id: str) -> TurnStarted:
        """Generate the last answer again, replacing the previous one."""
        self._check_capacity()
        return await self._start(
            owner,
            lambda gid: self.store.start_retry(
                owner,
                conversation_id,
                generation_id=gid,
                worker_id=self.worker_id,
                lease_seconds=LEASE_SECONDS,
            ),
        )

    async def _start(
        self, owner: str, begin: Callable[[str], Awaitable[TurnStarted]]
    ) -> TurnStarted:
        """Store the turn, then launch its generation, shielded from the request's
        cancellation: the store finishes a transaction it has begun whatever happens
        to its caller, so a turn that was stored is also answered."""

        async def start() -> TurnStarted:
            started = await begin(uuid.uuid4().hex)
            await self._launch(started, owner)
            return started

        task = asyncio.ensure_future(start())
        task.add_done_callback(_retrieve)  # if the request is gone, nobody else awaits it
        return await asyncio.shield(task)

    async def cancel(self, owner: str, generation_id: str) -> None:
        """Stop a generation, wherever it runs; after it has ended, nothing changes."""
        generation = await self.store.get_generation(generation_id, owner)
        if generation is None:
            raise NotFound("There is no such generation.")
        if generation.status is MessageStatus.STREAMING:
            await self.log.request_cancel(generation_id)

    async def delete_conversation(self, owner: str, conversation_id: str) -> None:
        """Delete a conversation; a generation running in it is stopped first."""
        conversation = await self.store.get_conversation(owner, conversation_id)
        if conversation is None:
            raise NotFound()
        for message in conversation.messages:
            if message.status is MessageStatus.STREAMING and message.generation_id:
                await self.log.request_cancel(message.generation_id)
                task = self._tasks.get(message.generation_id)
                if task is not None:
                    await asyncio.wait([task], timeout=5)
        if await self.store.delete_conversation(owner, conversation_id) is None:
            raise NotFound()

    def _check_capacity(self) -> None:
        if len(self._tasks) >= self.settings.max_concurrent_generations:
            raise ServiceUnavailable(
                "Too many answers are being written right now; please try again in a moment."
            )

    async def _launch(self, started: TurnStarted, owner: str) -> None:
        gid = started.generation_id
        try:
            await self.log.create(gid)
        except BrokerUnavailable as exc:
            await self._store_final(
                gid, "", MessageStatus.ERROR, (), exc.detail, None, final_event_id=None
            )
            raise
        self._answers[gid] = _Answer(started=started, owner=owner)
        task = asyncio.create_task(self._run(gid), name=f"hxchat-generation-{gid}")
        self._tasks[gid] = task
        self.metrics.running_generations.inc()
        task.add_done_callback(lambda _: self._forget(gid))

    def _forget(self, gid: str) -> None:
        self._tasks.pop(gid, None)
        self._answers.pop(gid, None)
        self.metrics.running_generations.dec()

    # -- one generation --------------------------------------------------------------

    async def _run(self, gid: str) -> None:
        answer = self._answers[gid]
        status, error = MessageStatus.COMPLETE, None
        cancelled_from_outside = False
        work: asyncio.Task[None] | None = None
        stop: asyncio.Task[None] | None = None
        try:
            history = await self.store.history(
                answer.started.conversation_id, answer.started.assistant_message_id
            )
            work = asyncio.create_task(self._consume(gid, history, answer))
            stop = asyncio.create_task(self.log.wait_cancelled(gid))
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
                status = MessageStatus.STOPPED
            elif (exc := work.exception()) is not None:
                status, error = MessageStatus.ERROR, _describe(exc)
        except asyncio.CancelledError:
            cancelled_from_outside = True
            status, error = MessageStatus.INTERRUPTED, INTERRUPTED_BY_SHUTDOWN
        except HxchatError as exc:  # the store or broker failed before the model ran
            status, error = MessageStatus.ERROR, exc.detail
        finally:
            for task in (work, stop):
                if task is not None and not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
        if not answer.lost:
            await self._finalize(gid, answer, status, error)
        if cancelled_from_outside:
            raise asyncio.CancelledError

    async def _consume(self, gid: str, history: list[Turn], answer: _Answer) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        events = self.model.stream(history)
        try:
            async for event in events:
                if isinstance(event, TextDelta) and event.text and answer.chars == 0:
                    self.metrics.time_to_first_token.observe(loop.time() - began)
                await self._publish(gid, event, answer)
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _publish(self, gid: str, event: AgentEvent, answer: _Answer) -> None:
        """Append one model event to the event log, then record it in the answer: the
        stored text is never ahead of what readers can get, nor behind it.

        A Stop (or shutdown) that cancels this while an append is under way still
        records it: the append is on its way (the Redis log sends a queued command
        whether or not its caller still waits; the in-memory one cannot be interrupted),
        so readers will see it, and the kept answer must hold it too. So does an append
        cut off by a broker outage (`AppendUncertain`): the log sends it again before
        the final event."""
        if isinstance(event, TextDelta):
            if not event.text:
                return
            if answer.chars + len(event.text) > self.settings.max_answer_chars:
                raise AnswerTooLong(
                    f"The answer was cut off at {self.settings.max_answer_chars:,} characters."
                )
            text = event.text
            await self._append(gid, EventKind.DELTA, {"text": text}, lambda: answer.add_text(text))
        elif isinstance(event, ToolCall):
            data = {"name": event.name, "arguments": dict(event.arguments)}
            await self.log.append(gid, EventKind.TOOL_CALL, data)
        elif isinstance(event, ToolResult):
            sources = event.sources
            found = {"name": event.name, "sources": [s.as_json() for s in sources]}
            await self._append(
                gid, EventKind.TOOL_RESULT, found, lambda: answer.add_sources(sources)
            )
        elif isinstance(event, SearchSuggestions):
            answer.suggestions = event.html

    async def _append(
        self, gid: str, kind: EventKind, data: Mapping[str, Any], record: Callable[[], None]
    ) -> None:
        """Append, then `record` what was appended; also when this is cancelled or the
        broker went away mid-append, since the event is then on its way to readers."""
        try:
            await self.log.append(gid, kind, data)
        except (asyncio.CancelledError, AppendUncertain):
            record()
            raise
        record()

    async def _finalize(
        self, gid: str, answer: _Answer, status: MessageStatus, error: str | None
    ) -> None:
        """Store the outcome first, then tell the readers: a client that sees `done`
        can send its next message at once (the conversation is already free)."""
        answer.finishing = True  # storing the end releases the lease: not "taken over"
        self.metrics.generations.labels(status=status.value).inc()
        await self._store_final(
            gid, answer.text, status, answer.sources, error, answer.suggestions, None
        )
        data: dict[str, object]
        if status is MessageStatus.ERROR or status is MessageStatus.INTERRUPTED:
            kind, data = EventKind.ERROR, {"message": error or "The answer failed."}
        else:
            kind = EventKind.DONE
            data = {"message_id": answer.started.assistant_message_id, "status": status.value}
        appended = await _retrying(
            lambda: self.log.append(gid, kind, data), BrokerUnavailable, attempts=13
        )
        if not appended:  # after about a minute and a half
            # Readers still end: a quiet stream asks the store (web/stream.py).
            logger.warning("could not append the final event of generation %s", gid)

    async def _store_final(
        self,
        gid: str,
        text: str,
        status: MessageStatus,
        sources: Sequence[Source],
        error: str | None,
        suggestions: str | None,
        final_event_id: str | None,
    ) -> None:
        """Store the outcome; retried while the database is briefly away."""
        stored = await _retrying(
            lambda: self.store.finish(
                gid,
                content=text,
                status=status,
                sources=sources,
                error=error,
                search_suggestions=suggestions,
                final_event_id=final_event_id,
                worker_id=self.worker_id,
            ),
            StoreUnavailable,
            attempts=8,  # about 35 s
        )
        if not stored:
            logger.error("could not store the end of generation %s; a sweeper will mark it", gid)

    # -- supervision -----------------------------------------------------------------

    async def _maintain(self) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + SWEEP_SECONDS
        while True:
            await asyncio.sleep(CHECKPOINT_SECONDS)
            try:
                await self._checkpoint_all()
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + SWEEP_SECONDS
                    await self._sweep()
            except (StoreUnavailable, BrokerUnavailable) as exc:
                logger.warning("supervision skipped a beat: %s", exc.detail)

    async def _checkpoint_all(self) -> None:
        """Save every running answer's text and renew its lease, in one transaction."""
        answers = [(gid, a) for gid, a in self._answers.items() if not a.finishing]
        partials = [(gid, answer.text, list(answer.sources)) for gid, answer in answers]
        lost = await self.store.checkpoint_many(partials, self.worker_id, LEASE_SECONDS)
        for gid in lost:
            task = self._tasks.get(gid)
            answer = self._answers.get(gid)
            if answer is None or answer.finishing:
                continue
            if task is not None and not task.done():
                logger.warning("generation %s was taken over; stopping it here", gid)
                answer.lost = True
                task.cancel()

    async def _sweep(self, include_live: bool = False) -> None:
        # Never our own: a lease of ours that ran out means we were slow, not dead.
        swept = await self.store.sweep_expired(
            include_live=include_live, spare_worker=None if include_live else self.worker_id
        )
        for generation in swept:
            self.metrics.interrupted_swept.inc()
            with contextlib.suppress(BrokerUnavailable):
                if await self.log.position(generation.id) is not Position.MISSING:
                    await self.log.append(
                        generation.id, EventKind.ERROR, {"message": INTERRUPTED_BY_CRASH}
                    )


async def _retrying(
    action: Callable[[], Awaitable[object]], error: type[Exception], attempts: int
) -> bool:
    """Run `action` until it does not raise `error`, backing off from 0.5 s to 10 s
    between tries; False if it never succeeded."""
    delay = 0.5
    for attempt in range(attempts):
        try:
            await action()
            return True
        except error:
            if attempt < attempts - 1:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
    return False


def _retrieve(task: asyncio.Future[TurnStarted]) -> None:
    """Mark the outcome seen, so that asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()


def _describe(exc: BaseException) -> str:
    """A sentence for the user about why the answer failed; details go to the log."""
    if isinstance(exc, ProviderError | HxchatError):
        return exc.detail
    logger.error("generation failed unexpectedly", exc_info=exc)
    return "The model failed unexpectedly; please try again."
