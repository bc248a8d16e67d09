"""What people do with their accounts, shared by the pages, the API and the command line:
sign in and out, sign up, change a password, make and revoke API tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hxchat.auth.identity import Identities, Identity
from hxchat.auth.limits import Limits
from hxchat.auth.names import MAX_NAME, check_name
from hxchat.auth.passwords import check_strength, hash_password, verify_password
from hxchat.auth.secrets import SESSION_COOKIE, digest, new_api_token, new_session_secret
from hxchat.config import Settings
from hxchat.errors import HxchatError, NotFound
from hxchat.metrics import Metrics
from hxchat.store.accounts import AccountStore, ApiToken, User
from hxchat.store.tables import utcnow

MAX_TOKEN_NAME = 100


class WrongPassword(HxchatError):
    status_code = 401
    default_detail = "Wrong username or password."


def session_cookie(secret: str, *, secure: bool, days: int) -> str:
    parts = [f"{SESSION_COOKIE}={secret}", "Path=/", f"Max-Age={days * 86_400}", "HttpOnly"]
    parts.append("SameSite=Lax")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def cleared_cookie(*, secure: bool) -> str:
    return session_cookie("", secure=secure, days=0)


@dataclass(frozen=True, slots=True)
class NewToken:
    token: ApiToken
    secret: str  # shown this once


class Accounts:
    """The account operations of one app (or of one command)."""

    def __init__(
        self,
        store: AccountStore,
        settings: Settings,
        limits: Limits | None = None,
        identities: Identities | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.limits = limits
        self.identities = identities
        self.metrics = metrics

    async def add(
        self, name: str, password: str | None, *, email: str | None = None, admin: bool = False
    ) -> User:
        name = check_name(name)
        hashed = await hash_password(password) if password is not None else None
        return await self.store.add_user(name, email=email, password_hash=hashed, admin=admin)

    async def sign_in(
        self, name: str, password: str, address: str, replaces: str | None
    ) -> tuple[User, str]:
        """The user and a new session secret; `replaces` (the digest of the browser's
        earlier session, if any) ends, so a sign-in never keeps a session it was given."""
        name = name.strip()
        if self.limits is not None:
            await self.limits.check_sign_in(name, address)
        found = await self.store.user_by_name(name) if 0 < len(name) <= MAX_NAME else None
        stored = None
        if found is not None and not found[0].disabled and found[0].auth == "password":
            stored = found[1]
        if found is None or stored is None or not await self._verify(password, stored):
            if stored is None:  # the same work as checking a real password
                await self._verify(password, None)
            if self.limits is not None:
                await self.limits.failed_sign_in(name, address)
            raise WrongPassword()
        return found[0], await self._new_session(found[0], replaces)

    async def sign_up(self, name: str, password: str, replaces: str | None) -> tuple[User, str]:
        check_strength(password)
        user = await self.add(name, password)
        return user, await self._new_session(user, replaces)

    async def start_session(self, user: User, replaces: str | None) -> str:
        """A session for a user someone else signed in (an OpenID Connect provider)."""
        return await self._new_session(user, replaces)

    async def _new_session(self, user: User, replaces: str | None) -> str:
        secret = new_session_secret()
        await self.store.create_session(user.id, digest(secret), replaces)
        if replaces is not None and self.identities is not None:
            self.identities.forget(replaces)
        return secret

    async def sign_out(self, session_key: str) -> None:
        await self.store.delete_session(session_key)
        if self.identities is not None:
            self.identities.forget(session_key)

    async def change_password(self, identity: Identity, current: str, new: str) -> None:
        """A new password; every other session and every API token of the user ends."""
        check_strength(new)
        stored = await self.store.password_hash_of(identity.user.id)
        if not await self._verify(current, stored):
            raise WrongPassword("The current password is wrong.")
        await self.store.set_password(
            identity.user.id, await hash_password(new), keep_session=identity.session
        )

    async def _verify(self, password: str, stored: str | None) -> bool:
        """`verify_password`, counted (`hxchat_password_checks_total`): the one costly
        step of a sign-in, which a locked-out attempt never reaches."""
        if self.metrics is not None:
            self.metrics.password_checks.inc()
        return await verify_password(password, stored)

    async def set_password(self, name: str, password: str) -> None:
        """From the command line: every session and token of the user ends."""
        found = await self.store.user_by_name(name)
        if found is None:
            raise NotFound(f"There is no user {name!r}.")
        await self.store.set_password(found[0].id, await hash_password(password))

    async def create_token(
        self, user: User, name: str, expires_in_days: int | None = None
    ) -> NewToken:
        name = check_name(name, limit=MAX_TOKEN_NAME, what="token name")
        expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
        secret = new_api_token()
        token = await self.store.create_token(user.id, name, digest(secret), expires)
        return NewToken(token, secret)

    async def revoke_token(self, user: User, token_id: str) -> None:
        if not await self.store.delete_token(user.id, token_id):
            raise NotFound("There is no such token.")
