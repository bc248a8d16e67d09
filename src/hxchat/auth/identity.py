"""A session cookie or an API token -> the signed-in user, fresh to within a second.

Every request that presents a secret is checked against the database, through a small
cache whose entries live `CHECK_SECONDS` (0.8 s): a logout, a revoked token, a disabled
or deleted user or a new password (which delete the rows, `store.accounts`) end the
sign-in on every worker within a second, while a page that loads a dozen things costs
one query. Absent secrets are cached too, so a client repeating a bad token costs one
query a second. The last use is written at most once a minute (`TOUCH_SECONDS`), not on
every request; a session expires `HXCHAT_SESSION_DAYS` after its last use.

Open event streams are checked together (`watching`): every `CHECK_SECONDS` one query
for all their sessions and one for all their tokens, however many streams are open,
instead of a query per stream and second; a stream whose sign-in is gone is told so
(`Watch.revoked`) and ends at its next event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta

from hxchat.auth.external import header_user
from hxchat.auth.secrets import digest
from hxchat.store.accounts import AccountStore, SignedIn, User
from hxchat.store.directory import UserDirectory
from hxchat.store.tables import utcnow

logger = logging.getLogger(__name__)

CHECK_SECONDS = 0.8
TOUCH_SECONDS = 60.0
CACHE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request is: the user, and the session's digest when a cookie said so (or
    the name a trusted proxy's header said)."""

    user: User
    session: str | None = None  # None: an API token or a proxy's header said so
    header: str | None = None  # header mode: the name the trusted proxy sent


@dataclass(eq=False, slots=True)
class Watch:
    """One open stream's sign-in, checked with all the others' (`Identities.watching`)."""

    key: str  # its cache key: "s:" a session's digest, "t:" a token's, "h:" a header name
    revoked: bool = False


def _watch_key(identity: Identity, token: str | None) -> str:
    if identity.header is not None:
        return "h:" + identity.header
    if identity.session is not None:
        return "s:" + identity.session
    return "t:" + digest(token or "")


class Identities:
    def __init__(
        self,
        accounts: AccountStore,
        session_days: int,
        directory: UserDirectory | None = None,
    ) -> None:
        self.accounts = accounts
        self.directory = directory
        self.session_lifetime = timedelta(days=session_days)
        self._cache: OrderedDict[str, tuple[float, SignedIn | None]] = OrderedDict()
        self._watched: set[Watch] = set()
        self._watcher: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()

    async def by_header(self, name: str) -> Identity | None:
        """Header mode: the user the trusted proxy names (made by their first request),
        or None (disabled). InvalidName for a value that cannot be a username."""
        assert self.directory is not None
        cache_key = "h:" + name
        now = time.monotonic()
        cached = self._cache.get(cache_key)
        if cached is not None and now - cached[0] < CHECK_SECONDS:
            signed = cached[1]
        else:
            user = await header_user(self.directory, name)
            signed = None if user is None else SignedIn(user, user.last_seen_at)
            if signed is not None and _stale(signed):
                await self.directory.seen(signed.user.id)
                signed = replace(signed, last_used_at=utcnow())
            self._remember(cache_key, now, signed)
        return None if signed is None else Identity(signed.user, header=name)

    async def by_session(self, secret: str) -> Identity | None:
        key = digest(secret)
        signed = await self._lookup("s:" + key, key, session=True)
        return None if signed is None else Identity(signed.user, session=key)

    async def by_token(self, secret: str) -> Identity | None:
        key = digest(secret)
        signed = await self._lookup("t:" + key, key, session=False)
        return None if signed is None else Identity(signed.user)

    @contextmanager
    def watching(self, identity: Identity, token: str | None) -> Iterator[Watch]:
        """While a stream is open: its sign-in, checked with the others' every
        `CHECK_SECONDS` (`token`: the API token it was opened with, if any)."""
        watch = Watch(_watch_key(identity, token))
        self._watched.add(watch)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch())
        try:
            yield watch
        finally:
            self._watched.discard(watch)

    async def _watch(self) -> None:
        while self._watched:
            await asyncio.sleep(CHECK_SECONDS)
            watched = list(self._watched)
            try:
                alive = await self._alive({watch.key for watch in watched})
            except Exception:  # the store away a moment: the next pass asks again
                logger.warning("could not check the sign-ins of open streams", exc_info=True)
                continue
            for watch in watched:
                if watch.key not in alive:
                    watch.revoked = True
                    self._cache.pop(watch.key, None)  # the next request asks at once

    async def _alive(self, keys: set[str]) -> set[str]:
        """Which of these cache keys are sign-ins still good: one query per kind."""
        alive: set[str] = set()
        sessions = sorted(key[2:] for key in keys if key.startswith("s:"))
        if sessions:
            not_before = utcnow() - self.session_lifetime
            found = await self.accounts.live_sessions(sessions, not_before)
            alive.update("s:" + key for key in found)
        tokens = sorted(key[2:] for key in keys if key.startswith("t:"))
        if tokens:
            alive.update("t:" + key for key in await self.accounts.live_tokens(tokens))
        for key in keys:  # header mode: one cached lookup per user, not per stream
            if key.startswith("h:") and await self.by_header(key[2:]) is not None:
                alive.add(key)
        return alive

    def forget(self, session_key: str) -> None:
        """This worker ended the session: forget it now, not in a second."""
        self._cache.pop("s:" + session_key, None)

    async def _lookup(self, cache_key: str, key: str, *, session: bool) -> SignedIn | None:
        now = time.monotonic()
        cached = self._cache.get(cache_key)
        if cached is not None and now - cached[0] < CHECK_SECONDS:
            return cached[1]
        if session:
            signed = await self.accounts.session_user(key, utcnow() - self.session_lifetime)
        else:
            signed = await self.accounts.token_user(key)
        if signed is not None and _stale(signed):
            if session:
                await self.accounts.touch_session(key, signed.user.id)
            else:
                await self.accounts.touch_token(key, signed.user.id)
            signed = replace(signed, last_used_at=utcnow())
        self._remember(cache_key, now, signed)
        return signed

    def _remember(self, cache_key: str, now: float, signed: SignedIn | None) -> None:
        self._cache[cache_key] = (now, signed)
        self._cache.move_to_end(cache_key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)


def _stale(signed: SignedIn) -> bool:
    used = signed.last_used_at
    return used is None or (utcnow() - used).total_seconds() >= TOUCH_SECONDS
