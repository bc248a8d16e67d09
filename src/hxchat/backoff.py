"""Waiting between attempts: the one exponential backoff of hxchat.

Every loop that tries again after a failure (a store write, a broker command, a lost
subscription) waits `Backoff.next()` seconds: the delay doubles from `first` up to
`most`, and `reset()` starts over after a success.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class Backoff:
    """Delays that double from `first` to at most `most` seconds."""

    def __init__(self, first: float, most: float) -> None:
        if not 0 < first <= most:
            raise ValueError("need 0 < first <= most")
        self.first = first
        self.most = most
        self._delay = first

    def next(self) -> float:
        """The delay to wait now; the following one is twice as long (up to `most`)."""
        delay = self._delay
        self._delay = min(delay * 2, self.most)
        return delay

    def reset(self) -> None:
        """Start again from `first` (after a success)."""
        self._delay = self.first

    async def sleep(self) -> None:
        await asyncio.sleep(self.next())


async def retrying(
    action: Callable[[], Awaitable[object]],
    error: type[Exception],
    *,
    attempts: int,
    backoff: Backoff,
) -> bool:
    """Run `action` until it does not raise `error`, at most `attempts` times, waiting
    `backoff` between tries; False if it never succeeded. Other errors propagate."""
    for attempt in range(attempts):
        try:
            await action()
            return True
        except error:
            if attempt < attempts - 1:
                await backoff.sleep()
    return False
