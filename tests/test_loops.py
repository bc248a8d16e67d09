"""Timers shared per millisecond (`loops.Ticks`): what the echo model's words and every
answer's frame appends wait on. Sharing must change nothing a waiter can see."""

from __future__ import annotations

import asyncio
import functools
import math
from typing import Any

import pytest

from hxchat import loops


async def test_waiters_due_in_one_millisecond_share_one_loop_timer_and_wake_in_order() -> None:
    loop = asyncio.get_running_loop()
    ticks = loops.Ticks(loop)
    timers: list[float] = []
    call_at = loop.call_at

    def counting(when: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        timers.append(when)
        return call_at(when, *args, **kwargs)

    loop.call_at = counting  # type: ignore[method-assign,assignment]
    try:
        now = loop.time()
        woken: list[int] = []

        def on_woken(index: int, _: object) -> None:
            woken.append(index)

        tick = math.floor((now + 0.02) * 1000)  # a whole millisecond of the loop's clock
        soon, later = tick / 1000, now + 0.0403
        waits = [ticks.until(soon + (i + 1) * 0.0001) for i in range(5)]  # within it
        waits += [ticks.until(later)]
        for index, wait in enumerate(waits):
            wait.add_done_callback(functools.partial(on_woken, index))
        await waits[-1]
    finally:
        del loop.call_at
    assert len(timers) == 2  # one loop timer for the five waiters of one millisecond
    assert woken == [0, 1, 2, 3, 4, 5]
    assert loop.time() >= later - loops.TIMER_SLACK


async def test_a_cancelled_waiter_or_a_failing_callback_stops_no_other() -> None:
    loop = asyncio.get_running_loop()
    ticks = loops.Ticks(loop)
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    try:
        when = loop.time() + 0.01
        cancelled, kept = ticks.until(when), ticks.until(when)
        ran: list[str] = []

        def fail(_: object) -> None:
            raise RuntimeError("a bug in one callback")

        ticks.call_at(when, fail, None)
        ticks.call_at(when, ran.append, "after the failure")
        cancelled.cancel()
        await kept
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert cancelled.cancelled() and kept.done() and not kept.cancelled()
    assert ran == ["after the failure"]
    assert [type(context["exception"]) for context in errors] == [RuntimeError]


@pytest.mark.parametrize("boundary", [100.05, 24691 * 0.05, 1234.55])
def test_a_frame_boundary_stays_on_its_own_millisecond(boundary: float) -> None:
    """Due times on the frame clock (`pending.next_frame`) are multiples of 50 ms with a
    float's error: they must not slip to the next millisecond."""
    ticks = loops.Ticks(asyncio.new_event_loop())
    try:
        ticks.call_at(boundary, print, None)
        assert list(ticks._waiting) == [round(boundary * 1000)]
    finally:
        ticks.loop.close()
