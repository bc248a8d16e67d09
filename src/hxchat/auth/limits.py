"""How much one owner may do, and how often a sign-in may fail, with the `limits` library.

The counts live in the `limits` storage: in this process's memory, or in Redis when
`HXCHAT_REDIS_URL` is set, so that every worker shares one count. Three rules:

- **Messages** (send, retry): `HXCHAT_RATE_LIMIT` per owner, a moving window.
- **Running answers**: at most `HXCHAT_MAX_ANSWERS_PER_USER` per owner, counted in the
  store (its `streaming` answers, on every worker), checked before a request stores
  anything, and again, exactly, where the new answer is stored (`store.running`).
- **Sign-in lockout**: 5 failed sign-ins for one username within 15 minutes, or 20
  from one address, lock that username (or address) for 15 minutes: a second,
  fixed-window key set at the failure that reaches the limit. Locked sign-ins are
  refused before the password is checked, so a locked-out attacker costs no hashing,
  and only after a wait in the `tarpit` (`auth.tarpit`), so it costs next to no CPU.

Every refusal is `TooManyRequests` (429) with the seconds to wait (`Retry-After`).
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from limits import RateLimitItem, RateLimitItemPerMinute, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool

from hxchat.auth.tarpit import Tarpit
from hxchat.config import Settings
from hxchat.errors import BrokerUnavailable, TooManyRequests
from hxchat.store.accounts import AccountStore
from hxchat.store.running import refusal

logger = logging.getLogger(__name__)

FAILURES_PER_NAME = RateLimitItemPerMinute(5, 15)
FAILURES_PER_ADDRESS = RateLimitItemPerMinute(20, 15)
LOCKED = RateLimitItemPerMinute(1, 15)  # set once at the failure that reaches a limit
KEY_PREFIX = "hxchat-limits"
COMMAND_TIMEOUT = 5.0  # seconds, as the event log's own Redis calls
EXPIRE_EVERY = 1.0  # seconds between two passes that forget expired counts in memory


class LoopMemoryStorage(MemoryStorage):
    """`limits`' in-memory storage, forgetting expired counts in the event loop.

    Its own pass (limits 5.8, started by every hit that finds none running) makes one
    `asyncio.to_thread` per key to bisect a short list: with many owners sending, a
    message cost a thread hop per owner seen in the last window, each a GIL hand-off
    that the streams pay for (bench/README.md). Here the pass runs in the loop, at
    most once per `EXPIRE_EVERY`; nothing is decided by it (a window counts its
    entries by their time), it only frees memory."""

    _next_pass = 0.0

    async def _MemoryStorage__expire_events(self) -> None:  # the pass it schedules
        now = time.time()
        if now < self._next_pass:
            return
        self._next_pass = now + EXPIRE_EVERY
        for key, events in list(self.events.items()):  # newest first
            kept = events[: bisect.bisect_left(events, -now, key=lambda entry: -entry.expiry)]
            if kept:
                self.events[key] = kept
            else:
                self.events.pop(key, None)
                self.locks.pop(key, None)
        for key, expires in list(self.expirations.items()):
            if expires <= now:
                self.storage.pop(key, None)
                self.expirations.pop(key, None)
                self.locks.pop(key, None)


def _storage_uri(redis_url: str) -> str:
    scheme, rest = redis_url.split("://", 1)
    return {"redis": "async+redis", "rediss": "async+rediss", "unix": "async+redis+unix"}[
        scheme
    ] + f"://{rest}"


def make_storage(settings: Settings) -> tuple[Storage, ConnectionPool | None]:
    """The `limits` storage, and the Redis connection pool to close with it (if any)."""
    if settings.redis_url is None:
        return LoopMemoryStorage(), None
    pool = ConnectionPool.from_url(settings.redis_url, socket_timeout=COMMAND_TIMEOUT)
    options: dict[str, Any] = {"connection_pool": pool}
    storage = RedisStorage(
        _storage_uri(settings.redis_url),
        wrap_exceptions=True,
        implementation="redispy",
        key_prefix=KEY_PREFIX,
        **options,
    )
    return storage, pool


def _seconds_until(reset_time: float) -> int:
    return max(1, math.ceil(reset_time - time.time()))


class Limits:
    """The per-owner limits and the sign-in lockout of one app."""

    def __init__(self, settings: Settings, accounts: AccountStore) -> None:
        self.storage, self._pool = make_storage(settings)
        self._moving = MovingWindowRateLimiter(self.storage)
        self._fixed = FixedWindowRateLimiter(self.storage)
        self._messages: RateLimitItem = parse(settings.rate_limit)
        self._limit_text = settings.rate_limit
        self._max_running = settings.max_answers_per_user
        self._accounts = accounts
        self.tarpit = Tarpit()  # where refused sign-ins wait

    async def close(self) -> None:
        timer: Any = getattr(self.storage, "timer", None)  # the memory storage's expiry task
        if timer is not None:
            timer.cancel()
        if self._pool is not None:
            await self._pool.aclose()

    @asynccontextmanager
    async def message(self, owner: str, starts_answer: bool = True) -> AsyncIterator[None]:
        """Refuse (429) a message of `owner` over the rate or while too many of its
        answers run; count it once the block is done. A request the block refuses (a
        conversation busy or not found, 409 or 404) started nothing, and costs nothing.
        A request that starts no answer (selecting a version) is not refused for the
        answers running. Requests checked at the same moment may pass together by as
        many as they are, once: the running limit still holds (the store counts again)."""
        running = await self._accounts.count_running(owner) if starts_answer else 0
        if running >= self._max_running:
            raise refusal(running)
        async with _storage_errors():
            allowed = await self._moving.test(self._messages, "messages", owner)
            if not allowed:
                stats = await self._moving.get_window_stats(self._messages, "messages", owner)
        if not allowed:
            wait = _seconds_until(stats.reset_time)
            raise TooManyRequests(
                f"You are sending messages too fast (the limit is {self._limit_text}); "
                f"try again in {wait} second{'s' if wait != 1 else ''}.",
                retry_after=wait,
            )
        yield
        try:
            await self._moving.hit(self._messages, "messages", owner)
        except StorageError:  # what it asked for is done: not turned into an error now
            logger.warning("a message was not counted against the rate: the storage is away")

    # -- sign-in ---------------------------------------------------------------------

    async def check_sign_in(self, name: str, address: str) -> None:
        """Refuse (429) while the username or the address is locked out."""
        async with _storage_errors():
            for scope, key in (("name", name), ("address", address)):
                if not await self._fixed.test(LOCKED, "locked", scope, key):
                    stats = await self._fixed.get_window_stats(LOCKED, "locked", scope, key)
                    wait = _seconds_until(stats.reset_time)
                    minutes = math.ceil(wait / 60)
                    raise TooManyRequests(
                        "Too many failed sign-ins; try again in "
                        f"{minutes} minute{'s' if minutes != 1 else ''}.",
                        retry_after=wait,
                    )

    async def failed_sign_in(self, name: str, address: str) -> None:
        """Count a failure; the one that reaches a limit locks for 15 minutes."""
        async with _storage_errors():
            for item, scope, key in (
                (FAILURES_PER_NAME, "name", name),
                (FAILURES_PER_ADDRESS, "address", address),
            ):
                await self._moving.hit(item, "failed", scope, key)
                stats = await self._moving.get_window_stats(item, "failed", scope, key)
                if stats.remaining <= 0:
                    await self._fixed.hit(LOCKED, "locked", scope, key)


@asynccontextmanager
async def _storage_errors() -> AsyncIterator[None]:
    """Redis away under the limits: the same 503 as the event log's."""
    try:
        yield
    except StorageError as exc:
        raise BrokerUnavailable() from exc
