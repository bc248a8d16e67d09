"""The answers of this worker: started, tracked and stopped.

A generation outlives the request that started it: `send` stores the user's message
and an assistant placeholder, then a background task owns the model call
(`answering.AnswerWriter`). Its events go to the event log, where any number of
readers replay and follow them. Stop requests come through the event log, so any
worker can stop a generation that runs on another. The text of a running answer is
checkpointed with its lease by the `supervision.LeaseSupervisor`, which asks here
for what each answer wrote since its last checkpoint (`checkpoints`), tells which
ones the store confirmed (`checkpointed`) and hands back the answers another worker
took over (`abandon`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from hxchat.answer import Answer
from hxchat.answering import AnswerWriter
from hxchat.broker.base import EventLog
from hxchat.config import Settings
from hxchat.domain import MessageStatus, ModelChoice
from hxchat.errors import BrokerUnavailable, NotFound, ServiceUnavailable, UnknownModel
from hxchat.metrics import Metrics
from hxchat.providers.base import ChatModel, TitleWriter
from hxchat.providers.catalogue import Catalogue
from hxchat.store.base import Checkpoint, Generation, Store, TurnStarted
from hxchat.supervision import LEASE_SECONDS
from hxchat.titles import Titles

if TYPE_CHECKING:
    from hxchat.files.service import Files

logger = logging.getLogger(__name__)


class GenerationRunner:
    """Starts, runs and stops the answers of this worker (`send`, `retry`, `cancel`,
    `close`); a conversation is deleted here because its running answer is stopped
    first."""

    def __init__(
        self,
        *,
        store: Store,
        log: EventLog,
        model: ChatModel,
        settings: Settings,
        metrics: Metrics,
        models: Catalogue | None = None,
        titles: Titles | None = None,
        files: Files | None = None,
    ) -> None:
        self.store = store
        # The model titles a conversation after its first answer (None: the first
        # message stays its title, `HXCHAT_TITLES=first-message`).
        self.titles = titles
        self.models = models  # the models offered; without it, `model` writes every answer
        self.log = log
        self.settings = settings
        self.metrics = metrics
        self.worker_id = uuid.uuid4().hex
        self._writer = AnswerWriter(
            store=store,
            log=log,
            model=model,
            settings=settings,
            metrics=metrics,
            worker_id=self.worker_id,
            files=files,
        )
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._answers: dict[str, Answer] = {}

    # -- lifecycle -------------------------------------------------------------------

    async def close(self) -> None:
        """Running generations end `interrupted` with their text."""
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
            content=answer.text(),
            sources=tuple(answer.sources),
            model=started.model,
        )

    # -- for the lease supervisor ----------------------------------------------------

    def checkpoints(self) -> list[Checkpoint]:
        """What every answer still running wrote since its last confirmed checkpoint."""
        return [answer.checkpoint() for answer in self._answers.values() if not answer.finishing]

    def checkpointed(self, checkpoints: Iterable[Checkpoint]) -> None:
        """The store has these checkpoints: the next ones start where they end."""
        for checkpoint in checkpoints:
            answer = self._answers.get(checkpoint.generation_id)
            if answer is not None:
                answer.checkpointed(checkpoint)

    def abandon(self, generation_id: str) -> None:
        """Stop an answer that another worker swept: it ends without writing anything."""
        task = self._tasks.get(generation_id)
        answer = self._answers.get(generation_id)
        if answer is None or answer.finishing:
            return
        if task is not None and not task.done():
            logger.warning("generation %s was taken over; stopping it here", generation_id)
            answer.lost = True
            task.cancel()

    # -- requests --------------------------------------------------------------------

    async def send(
        self,
        owner: str,
        conversation_id: str,
        content: str,
        model: str | None = None,
        files: Sequence[str] = (),
    ) -> TurnStarted:
        """Store the user's message (already checked, see `web.checks`) with the ids
        of its `files`, and start answering it, by `model` (see `choose`)."""
        choice = self.choose(model)
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
                choice=choice,
                model_title=self._titles_by(choice),
                files=files,
                most_running=self.settings.max_answers_per_user,
            ),
        )

    async def edit(
        self,
        owner: str,
        message_id: int,
        content: str,
        conversation_id: str | None = None,
        model: str | None = None,
    ) -> TurnStarted:
        """Store a new version of the user's message (already checked) and start
        answering it."""
        choice = self.choose(model)
        self._check_capacity()
        return await self._start(
            owner,
            lambda gid: self.store.start_edit(
                owner,
                message_id,
                content,
                generation_id=gid,
                worker_id=self.worker_id,
                lease_seconds=LEASE_SECONDS,
                conversation_id=conversation_id,
                choice=choice,
                most_running=self.settings.max_answers_per_user,
            ),
        )

    async def regenerate(
        self,
        owner: str,
        message_id: int,
        conversation_id: str | None = None,
        model: str | None = None,
    ) -> TurnStarted:
        """Start a new version of an answer, beside the one it was."""
        choice = self.choose(model)
        self._check_capacity()
        return await self._start(
            owner,
            lambda gid: self.store.start_regenerate(
                owner,
                message_id,
                generation_id=gid,
                worker_id=self.worker_id,
                lease_seconds=LEASE_SECONDS,
                conversation_id=conversation_id,
                choice=choice,
                most_running=self.settings.max_answers_per_user,
            ),
        )

    async def retry(self, owner: str, conversation_id: str) -> TurnStarted:
        """Generate the last answer again; the previous one stays as an older version."""
        choice = self.choose(None)
        self._check_capacity()
        return await self._start(
            owner,
            lambda gid: self.store.start_retry(
                owner,
                conversation_id,
                generation_id=gid,
                worker_id=self.worker_id,
                lease_seconds=LEASE_SECONDS,
                choice=choice,
                most_running=self.settings.max_answers_per_user,
            ),
        )

    def choose(self, model: str | None) -> ModelChoice | None:
        """How the store picks a new answer's model: `model` when given (`UnknownModel`,
        422, unless it is offered), else the conversation's. None without a catalogue."""
        if self.models is None:
            if model:
                raise UnknownModel(model)
            return None
        return self.models.choose(model)

    def _titles_by(self, choice: ModelChoice | None) -> bool:
        """Whether a first message's answer is to be titled by its model: titles are
        on and that model can write one (the echo model cannot). A first message has no
        earlier answer to inherit a model from: it is the one named, or the default."""
        if self.titles is None:
            return False
        if self.models is None or choice is None:
            return isinstance(self._writer.model, TitleWriter)
        return isinstance(self.models.model(choice.requested or choice.default), TitleWriter)

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
            await self._writer.store_final(
                gid, "", MessageStatus.ERROR, (), exc.detail, None, final_event_id=None
            )
            raise
        model = None if self.models is None else self.models.model(started.model)
        answer = self._answers[gid] = Answer(started=started, owner=owner, model=model)
        task = asyncio.create_task(self._writer.run(answer), name=f"hxchat-generation-{gid}")
        self._tasks[gid] = task
        self.metrics.running_generations.inc()
        task.add_done_callback(lambda _: self._forget(gid))

    def _forget(self, gid: str) -> None:
        self._tasks.pop(gid, None)
        answer = self._answers.pop(gid, None)
        self.metrics.running_generations.dec()
        if self.titles is not None and answer is not None and not answer.lost:
            # After the final event: the title never delays the answer (`titles.py`).
            model = answer.model or self._writer.model
            self.titles.after_answer(answer.started, model, answer.text(), answer.status)


def _retrieve(task: asyncio.Future[TurnStarted]) -> None:
    """Mark the outcome seen, so that asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()
