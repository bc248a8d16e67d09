"""Stopping an answer from any worker: the Redis log's cancel flags.

For a generation `g` under the prefix `p`, `p:cancel:g` is the flag, announced on the
channel `p:cancel`. Cancel waiters share one pub/sub subscription per event log; a
waiter also checks the flag when it starts, after every resubscription and every
couple of seconds, so a cancel published while the subscription was down still
arrives.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from hxchat.backoff import Backoff

logger = logging.getLogger(__name__)

CANCEL_POLL = 2.0  # a cancel waiter re-checks the flag this often (lost pub/sub messages)


@dataclass(eq=False, slots=True)
class _Waiter:
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: bool = False
    count: int = 0


class CancelFlags:
    """Cancel requests of one event log: set and announced on `commands`, heard by
    one subscription on `readers`."""

    def __init__(
        self, commands: Redis, readers: Redis, prefix: str, flag_ttl_ms: int, timeout: float
    ) -> None:
        self._commands = commands
        self._readers = readers
        self._prefix = prefix
        self._channel = f"{prefix}:cancel"
        self._flag_ttl_ms = flag_ttl_ms
        self._timeout = timeout  # seconds a command may take
        self._waiters: dict[str, _Waiter] = {}
        self._listener: asyncio.Task[None] | None = None
        self._closed = False

    def key(self, generation_id: str) -> str:
        return f"{self._prefix}:cancel:{generation_id}"

    async def request(self, generation_id: str) -> None:
        """Set the flag and announce it (Redis errors propagate to the caller)."""
        async with self._commands.pipeline(transaction=True) as pipe:
            pipe.set(self.key(generation_id), "1", px=self._flag_ttl_ms)
            pipe.publish(self._channel, generation_id)
            await pipe.execute()

    async def wait(self, generation_id: str) -> None:
        """Return once a cancel was requested (also one requested before this call).

        Survives a Redis outage: the flag is checked again until Redis answers.
        """
        waiter = self._waiters.setdefault(generation_id, _Waiter())
        waiter.count += 1
        try:
            if not self._closed and (self._listener is None or self._listener.done()):
                self._listener = asyncio.create_task(self._listen(), name="hxchat-cancel-listener")
            while True:
                waiter.wake.clear()
                if waiter.cancelled or await self._flag_is_set(generation_id):
                    return
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the
                # cancel that ends this wait when the generation finishes (gh-86296).
                with suppress(TimeoutError):
                    async with asyncio.timeout(CANCEL_POLL):
                        await waiter.wake.wait()
        finally:
            waiter.count -= 1
            if not waiter.count:
                del self._waiters[generation_id]

    async def _flag_is_set(self, generation_id: str) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                return bool(await self._commands.exists(self.key(generation_id)))
        except (redis_errors.RedisError, OSError) as exc:
            logger.debug("cannot check the cancel flag of %s: %r", generation_id, exc)
            return False

    async def _listen(self) -> None:
        """The one subscription; restarts itself after a lost connection."""
        backoff = Backoff(0.05, CANCEL_POLL)
        failing = False
        while not self._closed:
            pubsub = self._readers.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                if failing:
                    logger.info("cancel subscription restored")
                backoff.reset()
                failing = False
                for waiter in self._waiters.values():  # messages may have been missed
                    waiter.wake.set()
                while True:  # ends only by an exception
                    message: Any = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=None
                    )
                    if message is not None and message["type"] == "message":
                        found = self._waiters.get(str(message["data"]))
                        if found is not None:
                            found.cancelled = True
                            found.wake.set()
            except (redis_errors.RedisError, OSError) as exc:
                delay = backoff.next()
                level = logging.DEBUG if failing else logging.WARNING
                logger.log(level, "cancel subscription lost (%r); retrying in %.2f s", exc, delay)
                failing = True
            finally:
                with suppress(redis_errors.RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(delay)

    async def close(self) -> None:
        """Stop the subscription (waiters still find the flag by polling, until closed)."""
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.wait([self._listener], timeout=self._timeout)
            self._listener = None
