"""The text of an answer that waits to be appended to the event log.

A model may stream hundreds of tokens a second, but a reader never needs more than
one update per `domain.FRAME_INTERVAL`. So the generation (`answering.py`) appends
text at most once per interval: the first text of an answer, and text that follows a
quiet interval, at once; the rest waits here until the next boundary of the worker's
frame clock (`next_frame`: at least half an interval, at most one and a half), and goes
to the log as one `delta`. Text waiting here is not yet in the kept answer: it is recorded
when its append is done or on its way, like every event. No I/O here.

When the text is due, its timer appends it itself if the log can append without
waiting (the in-memory log: `append_now`), else it wakes the generation's flush task:
with the embedded defaults a merged delta costs no task wake-up.

This runs for every token, so it asks for the event loop once, not per call
(`loops`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from hxchat import loops
from hxchat.domain import FRAME_INTERVAL


def next_frame(now: float, interval: float) -> float:
    """When text taken `now` may next be appended: the first multiple of `interval` on
    the loop's clock at least half an interval away. Every answer of a worker shares
    these boundaries, so their merged deltas are due at the same moment and are
    appended in one turn of the loop (on Redis: in one round trip); an answer that
    streams steadily appends once per interval, exactly on them."""
    return math.ceil((now + interval / 2) / interval) * interval


@dataclass(eq=False, slots=True)
class PendingText:
    """Text deltas not yet appended, and when the next append of text is due.

    Whoever appends (the generation's own loop, or its timer task `flush_when_due`)
    holds `lock` from taking the text to the end of its append, so that text, tool
    calls and sources reach the log in the order the model gave them."""

    interval: float = FRAME_INTERVAL
    parts: list[str] = field(default_factory=list)
    chars: int = 0
    due: float = float("-inf")  # loop time from which text may be appended at once
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    failure: str | None = None  # why an append of this answer failed: none is tried after it
    # Called by the timer when the text is due, before it wakes `_waiter`: True when it
    # appended the text itself (a log that appends without waiting), so nothing wakes.
    append_now: Callable[[], bool] | None = None
    _waiter: asyncio.Future[None] | None = None
    _armed: bool = False  # a timer wakes `_waiter` when the text is due
    _sleeping: bool = False  # the flush task (`wait`) sleeps until the text is due
    # The timers, shared by every answer of the worker (`AnswerWriter`): their due
    # times fall on the same frame boundaries, so one loop timer serves them all.
    ticks: loops.Ticks | None = None

    def _timers(self) -> loops.Ticks:
        ticks = self.ticks
        if ticks is None:  # made and used within one loop: the answer's
            ticks = self.ticks = loops.Ticks(asyncio.get_running_loop())
        return ticks

    def add(self, text: str) -> bool:
        """Add text; True when it is due to be appended at once, by the caller (the
        first text, the first after a quiet interval, or text due while an append is
        under way: the caller then waits for it, and so holds the model back while
        the log is slow). Otherwise, when it is due, a timer appends it (`append_now`)
        or wakes the waiter (`wait`), not before: at most one wake-up per merged delta.

        Text that joins text already set to go at its due time (a timer armed, or the
        flush task asleep until then) goes with it without asking the clock: at 500
        tokens a second most tokens."""
        self.parts.append(text)
        self.chars += len(text)
        if self._armed or self._sleeping:
            return False
        if self.is_due():
            return True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._armed = True
            self._timers().call_at(self.due, self._due, waiter)
        return False

    def _due(self, waiter: asyncio.Future[None]) -> None:
        """The timer: the text is due. Appended here when `append_now` can, else the
        waiter (`wait`, in `_flush_when_due`) is woken to append it."""
        self._armed = False
        if self.append_now is None or not self.append_now():
            loops.wake(waiter)

    def is_due(self) -> bool:
        """Whether text may be appended now: a frame has passed since the last append
        (give or take the timers' millisecond, `loops.TIMER_SLACK`)."""
        return self._timers().loop.time() >= self.due - loops.TIMER_SLACK

    def take(self) -> str:
        """All the pending text, as one string; the next append is due at the first
        frame boundary at least half an interval from now (`next_frame`)."""
        text = "".join(self.parts)
        self.parts.clear()
        self.chars = 0
        self.due = next_frame(self._timers().loop.time(), self.interval)
        return text

    def put_back(self, text: str) -> None:
        """Text taken for an append that did not happen: first again, and due at once."""
        self.parts.insert(0, text)
        self.chars += len(text)
        self.due = float("-inf")

    async def wait(self) -> None:
        """Until some text is pending, then until it is due (as it stood then: the
        caller checks `is_due` again before it appends)."""
        ticks = self._timers()
        loop = ticks.loop
        while not self.parts:
            self._waiter = loop.create_future()
            self._armed = False
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.due - loop.time() > loops.TIMER_SLACK:
            self._sleeping = True
            try:
                await ticks.until(self.due)
            finally:
                self._sleeping = False
