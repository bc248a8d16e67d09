"""Waiting on an event loop the caller already has, for code that runs per word.

A streamed word went through a dozen calls of `asyncio.sleep`, `asyncio.timeout` and
`asyncio.get_running_loop()` (which on CPython 3.11 also makes a `getpid()` system
call, a check against a forked child). Each is more Python work than a timer on a
future of a loop at hand, so code on the per-word path asks for the loop once (per
answer, per stream, per log) and waits with the helpers here or a timer of its own
(bench/README.md says what it saved, and why profilers overstate the system calls).
"""

from __future__ import annotations

import asyncio

# uvloop (libuv) keeps time in whole milliseconds: a timer may fire up to 1 ms before
# the time it was asked for. Code that waits for a time and then checks it treats a
# time within this of now as come, instead of sleeping again for the remainder (which
# libuv rounds to 0 ms: a task woken once per loop iteration until the clock catches
# up, as many as a few hundred wake-ups for one frame on a busy worker).
TIMER_SLACK = 0.001


def until(loop: asyncio.AbstractEventLoop, when: float) -> asyncio.Future[None]:
    """A future of `loop` (the running loop) settled at `when` (loop time): `await` it
    to sleep until then. No coroutine of its own, for code that waits once per word;
    a waiter cancelled before `when` leaves only the timer, which then finds the
    future done and does nothing."""
    done: asyncio.Future[None] = loop.create_future()
    loop.call_at(when, wake, done)
    return done


def wake(future: asyncio.Future[None]) -> None:
    """Settle a future that nothing has settled (or cancelled) yet: for timers."""
    if not future.done():
        future.set_result(None)
