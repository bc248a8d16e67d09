"""Waiting on an event loop the caller already has, for code that runs per word.

On CPython 3.11, `asyncio.get_running_loop()` makes a `getpid()` system call each
time (a check against a forked child), and so do `asyncio.sleep`, `asyncio.timeout`
and `asyncio.current_task`, which call it. A streamed word went through a dozen of
them, the largest single share of its CPU in profiles on a VM where a system call is
dear (bench/README.md). Code on the per-word path therefore asks for the loop once
(per answer, per stream, per log) and waits with the helpers here or with a timer of
its own on a future.
"""

from __future__ import annotations

import asyncio


async def sleep(loop: asyncio.AbstractEventLoop, delay: float) -> None:
    """`asyncio.sleep(delay)` on `loop`, the running loop."""
    done: asyncio.Future[None] = loop.create_future()
    timer = loop.call_later(delay, wake, done)
    try:
        await done
    finally:
        timer.cancel()


def wake(future: asyncio.Future[None]) -> None:
    """Settle a future that nothing has settled (or cancelled) yet: for timers."""
    if not future.done():
        future.set_result(None)
