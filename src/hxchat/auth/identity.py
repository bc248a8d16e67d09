"""A session cookie or an API token -> the signed-in user, fresh to within a second.

Every request that presents a secret is checked against the database, through a small
cache whose entries live `CHECK_SECONDS` (1 s): a logout, a revoked token, a disabled
or deleted user or a new password (which delete the rows, `store.accounts`) end the
sign-in on every worker within a second, while a page that loads a dozen things costs
one query. Absent secrets are cached too, so a client repeating a bad token costs one
query a second. The last use is written at most once a minute (`TOUCH_SECONDS`), not on
every request; a session expires `HXCHAT_SESSION_DAYS` after its last use.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import timedelta

from hxchat.auth.secrets import digest
from hxchat.store.accounts import AccountStore, SignedIn, User
from hxchat.store.tables import utcnow

CHECK_SECONDS = 1.0
TOUCH_SECONDS = 60.0
CACHE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request is: the user, and the session's digest when a cookie said so."""

    user: User
    session: str | None = None  # None: an API token said so


class Identities:
    def __init__(self, accounts: AccountStore, session_days: int) -> None:
        self.accounts = accounts
        self.session_lifetime = timedelta(days=session_days)
        self._cache: OrderedDict[str, tuple[float, SignedIn | None]] = OrderedDict()

    async def by_session(self, secret: str) -> Identity | None:
        key = digest(secret)
        signed = await self._lookup("s:" + key, key, session=True)
        return None if signed is None else Identity(signed.user, session=key)

    async def by_token(self, secret: str) -> Identity | None:
        key = digest(secret)
        signed = await self._lookup("t:" + key, key, session=False)
        return None if signed is None else Identity(signed.user)

    async def still_valid(self, identity: Identity, token: str | None) -> bool:
        """For a long stream: is its sign-in still good (cached for a second)?"""
        if identity.session is not None:
            key = identity.session
            return await self._lookup("s:" + key, key, session=True) is not None
        if token is None:
            return False
        key = digest(token)
        return await self._lookup("t:" + key, key, session=False) is not None

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
        self._cache[cache_key] = (now, signed)
        self._cache.move_to_end(cache_key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return signed


def _stale(signed: SignedIn) -> bool:
    used = signed.last_used_at
    return used is None or (utcnow() - used).total_seconds() >= TOUCH_SECONDS
