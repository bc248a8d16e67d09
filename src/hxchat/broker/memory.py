"""The in-process event log: the embedded default for one worker.

Plain asyncio, no I/O. Every log is a list of events whose ids are "1", "2", ... in
order. A reader replays the list from its cursor, then waits on a future of its own that
the next append resolves, so readers leave nothing behind in the log, any number of
them cost nothing between events, and an append with no reader waiting (they are
mostly asleep between frames) costs nothing either.

Everything is bounded, because this lives in the server's own memory:

- a finished log expires `ttl` seconds after its final event (checked on every call,
  cheapest first: finished logs are kept in the order they finished);
- at most `max_logs` logs: a new one evicts the oldest finished log, and when every
  log is still running the new one is refused with `BrokerUnavailable`;
- at most `max_events` events per log (the runner caps answers below this), plus the
  final event, which is always accepted so that readers are never left waiting;
- a running log that has taken no event for a day is dropped (its writer is gone);
- cancel flags live as long as their log, at most `max_logs` of them without one.

A log that is already finished takes no more events: such an append (a late `error`
from a crash sweeper racing the runner's `done`) is ignored and returns the final
event's id, so readers only ever see one final event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hxchat.broker.base import Position, plain
from hxchat.domain import EventKind, LogEvent
from hxchat.errors import BrokerUnavailable

logger = logging.getLogger(__name__)

STALE_AFTER = 86_400.0  # a running log without an event for this long has lost its writer
SWEEP_EVERY = 60.0  # how often running logs are scanned for staleness

_CURSOR = re.compile(r"[0-9]{1,18}")


def _cursor(after: str | None) -> int:
    """The number of events a reader has seen; a malformed cursor counts as none."""
    if after is None or not _CURSOR.fullmatch(after):
        return 0
    return int(after)


def _settle(waiter: asyncio.Future[bool], woken: bool) -> None:
    if not waiter.done():
        waiter.set_result(woken)


@dataclass(eq=False, slots=True)
class _Log:
    loop: asyncio.AbstractEventLoop  # the one it was opened in (asked once, see `wait`)
    touched: float
    events: list[LogEvent] = field(default_factory=list)
    waiters: list[asyncio.Future[bool]] = field(default_factory=list)
    final_id: int | None = None
    gone: bool = False

    def wake(self) -> None:
        """Wake every reader waiting now (an append with nobody waiting costs nothing)."""
        if self.waiters:
            for waiter in self.waiters:
                _settle(waiter, True)
            self.waiters.clear()

    async def wait(self, timeout: float) -> bool:
        """Until the next `wake` (True) or `timeout` seconds (False). A timer that
        settles the reader's own future: cheaper than `asyncio.timeout`, and a JSON
        reader waits once per word. The log's own loop, not `asyncio.get_running_loop()`
        each time (`hxchat/loops.py`)."""
        loop = self.loop
        waiter: asyncio.Future[bool] = loop.create_future()
        self.waiters.append(waiter)
        expiry = loop.call_later(timeout, _settle, waiter, False)
        try:
            return await waiter
        finally:
            expiry.cancel()
            woken = waiter.done() and not waiter.cancelled() and waiter.result()
            if not woken:  # timed out or cancelled: `wake` has not taken it out
                with contextlib.suppress(ValueError):
                    self.waiters.remove(waiter)


@dataclass(eq=False, slots=True)
class _CancelFlag:
    event: asyncio.Event = field(default_factory=asyncio.Event)
    waiters: int = 0


class MemoryEventLog:
    """`EventLog` in this process's memory; ids are "1", "2", ... per generation."""

    def __init__(self, ttl: float = 900, max_logs: int = 10_000, max_events: int = 200_000) -> None:
        self._ttl = ttl
        self._max_logs = max_logs
        self._max_events = max_events
        self._logs: dict[str, _Log] = {}
        self._finished: OrderedDict[str, float] = OrderedDict()  # id -> expiry, in order
        self._cancels: dict[str, _CancelFlag] = {}
        self._next_sweep = time.monotonic() + SWEEP_EVERY

    async def create(self, generation_id: str) -> None:
        """Open an empty log, so that readers who come before the first event wait."""
        now = time.monotonic()
        self._purge(now)
        if generation_id not in self._logs:
            self._open(generation_id, now)

    async def append(self, generation_id: str, kind: EventKind, data: Mapping[str, Any]) -> str:
        """Append one event and return its id; a final kind finishes the log."""
        return self.append_now(generation_id, kind, data)

    def append_now(self, generation_id: str, kind: EventKind, data: Mapping[str, Any]) -> str:
        """`append`, without a coroutine: nothing here waits, so a timer may append
        (`answering.AnswerWriter` appends merged text so, without waking a task)."""
        now = time.monotonic()
        self._purge(now)
        log = self._logs.get(generation_id) or self._open(generation_id, now)
        if log.final_id is not None:
            logger.debug("generation %s is finished; %s event ignored", generation_id, kind)
            return str(log.final_id)
        if not kind.is_final and len(log.events) >= self._max_events:
            raise BrokerUnavailable("This answer has more events than the event log can hold.")
        event = LogEvent(str(len(log.events) + 1), kind, plain(data))
        log.events.append(event)
        log.touched = now
        if kind.is_final:
            log.final_id = len(log.events)
            self._finished[generation_id] = now + self._ttl
        log.wake()
        return event.id

    async def read_batch(
        self, generation_id: str, after: str | None, timeout: float
    ) -> list[LogEvent] | None:
        """Every event after the cursor, waiting up to `timeout` for the first one."""
        log = self._logs.get(generation_id)
        if log is None:
            return None
        index = _cursor(after)
        if index >= len(log.events):
            if log.final_id is not None or log.gone:
                return None
            if timeout <= 0:
                return []
            if not await log.wait(timeout):
                return []
            if log.gone:
                return None
        return log.events[index:]

    async def position(self, generation_id: str, after: str | None = None) -> Position:
        """Where a reader with this cursor stands: missing, readable or at the end."""
        self._purge(time.monotonic())
        log = self._logs.get(generation_id)
        if log is None:
            return Position.MISSING
        if log.final_id is not None and _cursor(after) >= log.final_id:
            return Position.AT_END
        return Position.READABLE

    async def request_cancel(self, generation_id: str) -> None:
        """Ask the runner of this generation to stop it (it may not be waiting yet)."""
        self._flag(generation_id).event.set()

    async def wait_cancelled(self, generation_id: str) -> None:
        """Return once a cancel was requested (also one requested before this call)."""
        flag = self._flag(generation_id)
        flag.waiters += 1
        try:
            await flag.event.wait()
        finally:
            flag.waiters -= 1
            if (
                flag.waiters == 0
                and generation_id not in self._logs
                and self._cancels.get(generation_id) is flag
            ):
                del self._cancels[generation_id]

    async def ping(self) -> None:
        """Always answers: the log lives in this process."""

    async def close(self) -> None:
        """Forget every log; readers still waiting end."""
        for log in self._logs.values():
            log.gone = True
            log.wake()
        self._logs.clear()
        self._finished.clear()
        self._cancels = {k: f for k, f in self._cancels.items() if f.waiters}

    # -- bookkeeping ----------------------------------------------------------------

    def _open(self, generation_id: str, now: float) -> _Log:
        if len(self._logs) >= self._max_logs and self._finished:
            oldest = next(iter(self._finished))
            self._drop(oldest)
        if len(self._logs) >= self._max_logs:
            raise BrokerUnavailable(
                "Too many answers are being written at once; please try again in a moment."
            )
        log = self._logs[generation_id] = _Log(asyncio.get_running_loop(), touched=now)
        return log

    def _drop(self, generation_id: str) -> None:
        self._finished.pop(generation_id, None)
        log = self._logs.pop(generation_id, None)
        if log is not None:
            log.gone = True
            log.wake()
        flag = self._cancels.get(generation_id)
        if flag is not None and not flag.waiters:
            del self._cancels[generation_id]

    def _purge(self, now: float) -> None:
        """Drop expired logs: O(1) unless some are due; stale running logs once a minute."""
        while self._finished:
            generation_id, expires = next(iter(self._finished.items()))
            if expires > now:
                break
            self._drop(generation_id)
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_EVERY
            stale = [
                generation_id
                for generation_id, log in self._logs.items()
                if log.final_id is None and now - log.touched >= STALE_AFTER
            ]
            for generation_id in stale:
                logger.warning("dropping the event log of %s: no event for a day", generation_id)
                self._drop(generation_id)

    def _flag(self, generation_id: str) -> _CancelFlag:
        flag = self._cancels.get(generation_id)
        if flag is None:
            flag = self._cancels[generation_id] = _CancelFlag()
            if len(self._cancels) > self._max_logs:
                self._bound_cancels(keep=generation_id)
        return flag

    def _bound_cancels(self, keep: str) -> None:
        """Forget the oldest flags nobody needs: no waiter and no running log."""
        excess = len(self._cancels) - self._max_logs
        victims: list[str] = []
        for generation_id, flag in self._cancels.items():
            if len(victims) >= excess:
                break
            log = self._logs.get(generation_id)
            running = log is not None and log.final_id is None
            if generation_id != keep and not flag.waiters and not running:
                victims.append(generation_id)
        for generation_id in victims:
            del self._cancels[generation_id]
