"""The one backoff: delays that double up to a cap, and retrying with it."""

from __future__ import annotations

import asyncio

import pytest

from hxchat.backoff import Backoff, retrying


def test_delays_double_up_to_the_cap_and_start_over_after_a_reset() -> None:
    backoff = Backoff(0.5, 3.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5


@pytest.mark.parametrize(("first", "most"), [(0.0, 1.0), (2.0, 1.0), (-1.0, 1.0)])
def test_a_backoff_that_cannot_work_is_refused(first: float, most: float) -> None:
    with pytest.raises(ValueError, match="first"):
        Backoff(first, most)


async def test_retrying_stops_at_the_first_success() -> None:
    calls: list[int] = []

    async def flaky() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError

    assert await retrying(flaky, ConnectionError, attempts=5, backoff=Backoff(0.001, 0.001))
    assert len(calls) == 3


async def test_retrying_gives_up_after_its_attempts_and_waits_only_between_them() -> None:
    calls: list[float] = []
    loop = asyncio.get_running_loop()

    async def down() -> None:
        calls.append(loop.time())
        raise ConnectionError

    began = loop.time()
    assert not await retrying(down, ConnectionError, attempts=3, backoff=Backoff(0.02, 0.04))
    assert len(calls) == 3
    assert calls[1] - calls[0] >= 0.02 and calls[2] - calls[1] >= 0.04
    assert loop.time() - began < 0.06 + 0.5  # no wait after the last attempt (with slack)


async def test_retrying_lets_other_errors_through() -> None:
    async def broken() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await retrying(broken, ConnectionError, attempts=3, backoff=Backoff(0.001, 0.001))
