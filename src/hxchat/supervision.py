"""Leases: how workers tell the others that their answers are still being written.

An answer being written belongs to one worker for `LEASE_SECONDS` at a time. Once a
second (`CHECKPOINT_SECONDS`) the supervisor of each worker saves the text that each
of its running answers wrote since its last checkpoint and renews their leases, in
one transaction; a checkpoint the store did not confirm is sent again, with what came
since, by the next one. Every `SWEEP_SECONDS` it also marks `interrupted` the answers
whose lease has run out (their worker died) and tells their readers so; whichever
worker sweeps first takes each one. An answer of this worker that another worker
swept meanwhile is stopped here, without writing anything more.

The same loop runs the slow housekeeping (`housekeeping`, every `HOUSEKEEPING_SECONDS`):
the files no message has used for a day are removed (#11).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from hxchat.broker.base import EventLog, Position
from hxchat.domain import EventKind
from hxchat.errors import BrokerUnavailable, StoreUnavailable
from hxchat.metrics import Metrics
from hxchat.store.base import Checkpoint, Store

logger = logging.getLogger(__name__)

LEASE_SECONDS = 10.0  # a worker that has not renewed for this long is presumed dead
CHECKPOINT_SECONDS = 1.0  # how stale the stored partial text may be
SWEEP_SECONDS = 3.0
HOUSEKEEPING_SECONDS = 600.0
INTERRUPTED_BY_CRASH = "Interrupted: the server writing this answer stopped."


class LiveAnswers(Protocol):
    """The answers a worker is writing, as far as their leases are concerned."""

    @property
    def worker_id(self) -> str: ...

    def checkpoints(self) -> list[Checkpoint]:
        """What every answer still running wrote since its last confirmed checkpoint."""
        ...

    def checkpointed(self, checkpoints: Iterable[Checkpoint]) -> None:
        """The store has these checkpoints: the next ones start where they end."""
        ...

    def abandon(self, generation_id: str) -> None:
        """Stop an answer that another worker took over, writing nothing more."""
        ...


class LeaseSupervisor:
    """Checkpoints this worker's answers and sweeps the ones dead workers left."""

    def __init__(
        self,
        *,
        store: Store,
        log: EventLog,
        metrics: Metrics,
        answers: LiveAnswers,
        sweep_live_on_start: bool = False,
        housekeeping: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.housekeeping = housekeeping
        self.store = store
        self.log = log
        self.metrics = metrics
        self.answers = answers
        self._sweep_live_on_start = sweep_live_on_start
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Sweep what a crashed predecessor left, then supervise leases."""
        await self._sweep(include_live=self._sweep_live_on_start)
        self._task = asyncio.create_task(self._maintain(), name="hxchat-maintenance")

    async def close(self) -> None:
        """Stop supervising (the answers still running keep their leases until they end)."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _maintain(self) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + SWEEP_SECONDS
        next_housekeeping = loop.time() + SWEEP_SECONDS
        while True:
            await asyncio.sleep(CHECKPOINT_SECONDS)
            try:
                await self._checkpoint_all()
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + SWEEP_SECONDS
                    await self._sweep()
                if self.housekeeping is not None and loop.time() >= next_housekeeping:
                    next_housekeeping = loop.time() + HOUSEKEEPING_SECONDS
                    await self.housekeeping()
            except (StoreUnavailable, BrokerUnavailable) as exc:
                logger.warning("supervision skipped a beat: %s", exc.detail)
            except Exception:  # the file storage away: the next round tries again
                logger.exception("housekeeping failed")

    async def _checkpoint_all(self) -> None:
        """Save every running answer's new text and renew its lease, in one transaction.
        A failure (the store away) confirms nothing: the next checkpoint sends the same
        text again, with what came since."""
        checkpoints = self.answers.checkpoints()
        lost = await self.store.checkpoint_many(checkpoints, self.answers.worker_id, LEASE_SECONDS)
        self.answers.checkpointed(c for c in checkpoints if c.generation_id not in lost)
        for gid in lost:
            self.answers.abandon(gid)

    async def _sweep(self, include_live: bool = False) -> None:
        # Never our own: a lease of ours that ran out means we were slow, not dead.
        swept = await self.store.sweep_expired(
            include_live=include_live,
            spare_worker=None if include_live else self.answers.worker_id,
        )
        for generation in swept:
            self.metrics.interrupted_swept.inc()
            with contextlib.suppress(BrokerUnavailable):
                if await self.log.position(generation.id) is not Position.MISSING:
                    await self.log.append(
                        generation.id, EventKind.ERROR, {"message": INTERRUPTED_BY_CRASH}
                    )
