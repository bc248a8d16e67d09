"""Waiting on an event loop the caller already has, for code that runs per word.

A streamed word went through a dozen calls of `asyncio.sleep`, `asyncio.timeout` and
`asyncio.get_running_loop()` (which on CPython 3.11 also makes a `getpid()` system
call, a check against a forked child). Each is more Python work than a timer on a
future of a loop at hand, so code on the per-word path asks for the loop once (per
answer, per stream, per log) and waits with the helpers here or a timer of its own
(bench/README.md says what it saved, and why profilers overstate the system calls).
What waits once per word or per frame for many streams at once (the echo model's
words, every answer's merged text) shares one loop timer per millisecond (`Ticks`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# uvloop (libuv) keeps time in whole milliseconds: a timer may fire up to 1 ms before
# the time it was asked for. Code that waits for a time and then checks it treats a
# time within this of now as come, instead of sleeping again for the remainder (which
# libuv rounds to 0 ms: a task woken once per loop iteration until the clock catches
# up, as many as a few hundred wake-ups for one frame on a busy worker).
TIMER_SLACK = 0.001


def wake(future: asyncio.Future[None]) -> None:
    """Settle a future that nothing has settled (or cancelled) yet: for timers."""
    if not future.done():
        future.set_result(None)


class Ticks:
    """Timers of one event loop, each rounded up to the loop's next millisecond, and one
    loop timer per millisecond however many fall in it.

    A uvloop timer is a libuv timer of its own, and costs about as much again as the
    rest of a word's wait: code that waits once per word for hundreds of streams (the
    echo model at 2 ms a word), or once per frame for every answer (`pending`), shares
    them here. Every waiter has its own future, so cancelling one cancels no other, and
    a callback that raises stops no other."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._waiting: dict[int, list[tuple[Callable[[Any], object], Any]]] = {}

    def call_at(self, when: float, callback: Callable[[T], object], argument: T) -> None:
        """`callback(argument)` at the first millisecond tick at or after `when` (a
        nanosecond's float error aside: frame boundaries stay on their tick)."""
        tick = math.ceil(when * 1000 - 1e-6)
        waiting = self._waiting.get(tick)
        if waiting is None:
            waiting = self._waiting[tick] = []
            self.loop.call_at(tick / 1000, self._fire, tick)
        waiting.append((callback, argument))

    def until(self, when: float) -> asyncio.Future[None]:
        """A future settled at that tick: `await` it to sleep until then."""
        done: asyncio.Future[None] = self.loop.create_future()
        self.call_at(when, wake, done)
        return done

    def _fire(self, tick: int) -> None:
        for callback, argument in self._waiting.pop(tick):
            try:
                callback(argument)
            except Exception as exc:  # as the loop does for a timer of its own
                self.loop.call_exception_handler(
                    {"message": f"Exception in timer callback {callback!r}", "exception": exc}
                )


def ticks_on(loop: asyncio.AbstractEventLoop, ticks: Ticks | None) -> Ticks:
    """`ticks` if they are `loop`'s, else new ones for it: for an object that keeps
    them for all its streams, and may serve more than one loop (as in tests)."""
    return ticks if ticks is not None and ticks.loop is loop else Ticks(loop)
