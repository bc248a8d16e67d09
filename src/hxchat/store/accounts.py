"""Users, their sign-in sessions and API tokens.

Like `queries`, each function here is one whole transaction on the connection it is
given; `AccountStore` runs them on a `SqlStore` (`SqlStore.run`). Sessions and tokens
are found by the SHA-256 of their secret (the caller hashes, `auth.secrets`): the
database never holds a secret a browser or a program could present.

Ending a user's sign-ins (disabled, deleted, a new password) deletes their session and
token rows; every worker checks a session or a token against the database at least
once a second (`auth.identity`), so that ends them everywhere within a second.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from hxchat.errors import HxchatError
from hxchat.store import files
from hxchat.store.running import count_running
from hxchat.store.tables import api_tokens, conversations, sessions, users, utcnow

if TYPE_CHECKING:
    from hxchat.store.sql import SqlStore


class NameTaken(HxchatError):
    status_code = 409
    default_detail = "That username is taken."


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    email: str | None
    admin: bool
    disabled: bool
    auth: str  # how they sign in: password, oidc, header
    created_at: datetime
    last_seen_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A user found through a session or a token, and when that was last used."""

    user: User
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


# A user as a row, and ending a user's sign-ins: shared with `store.directory`, which
# finds and changes users for the other sign-ins and /admin.
USER_COLUMNS = (
    users.c.id,
    users.c.name,
    users.c.email,
    users.c.admin,
    users.c.disabled,
    users.c.auth,
    users.c.created_at,
    users.c.last_seen_at,
)


def user_from_row(row: Any) -> User:
    """The `User` of a row selected with `USER_COLUMNS`."""
    return User(
        id=row.id,
        name=row.name,
        email=row.email,
        admin=bool(row.admin),
        disabled=bool(row.disabled),
        auth=row.auth,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
    )


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=row.id,
        name=row.name,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
    )


# -- users ---------------------------------------------------------------------------


def add_user(
    conn: Connection,
    name: str,
    email: str | None,
    password_hash: str | None,
    admin: bool,
    auth: str,
) -> User:
    if conn.scalar(select(users.c.id).where(users.c.name == name)) is not None:
        raise NameTaken()
    user_id = uuid.uuid4().hex
    conn.execute(
        insert(users).values(
            id=user_id,
            name=name,
            email=email,
            password_hash=password_hash,
            auth=auth,
            admin=admin,
            disabled=False,
            created_at=utcnow(),
        )
    )
    row = conn.execute(select(*USER_COLUMNS).where(users.c.id == user_id)).one()
    return user_from_row(row)


def user_by_name(conn: Connection, name: str) -> tuple[User, str | None] | None:
    row = conn.execute(select(*USER_COLUMNS, users.c.password_hash).where(users.c.name == name))
    found = row.first()
    return None if found is None else (user_from_row(found), found.password_hash)


def password_hash_of(conn: Connection, user_id: str) -> str | None:
    return conn.scalar(select(users.c.password_hash).where(users.c.id == user_id))


def list_users(conn: Connection) -> list[User]:
    return [user_from_row(r) for r in conn.execute(select(*USER_COLUMNS).order_by(users.c.name))]


def end_sign_ins(conn: Connection, user_id: str, keep_session: str | None = None) -> None:
    """Delete the user's sessions (but `keep_session`) and API tokens: every worker sees
    them gone at its next check, within a second."""
    ended = delete(sessions).where(sessions.c.user_id == user_id)
    if keep_session is not None:
        ended = ended.where(sessions.c.id != keep_session)
    conn.execute(ended)
    conn.execute(delete(api_tokens).where(api_tokens.c.user_id == user_id))


def set_disabled(conn: Connection, name: str, disabled: bool) -> bool:
    user_id = conn.scalar(select(users.c.id).where(users.c.name == name))
    if user_id is None:
        return False
    conn.execute(update(users).where(users.c.id == user_id).values(disabled=disabled))
    if disabled:
        end_sign_ins(conn, user_id)
    return True


def set_password(
    conn: Connection, user_id: str, password_hash: str, keep_session: str | None
) -> None:
    """A new password ends every other session and every API token of the user."""
    conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))
    end_sign_ins(conn, user_id, keep_session)


def delete_user(conn: Connection, name: str) -> bool:
    """The user, their sessions and tokens, and their conversations with their messages."""
    user_id = conn.scalar(select(users.c.id).where(users.c.name == name))
    if user_id is None:
        return False
    conn.execute(delete(conversations).where(conversations.c.owner == user_id))
    files.forget_owner(conn, user_id)  # their contents go with the next sweep
    end_sign_ins(conn, user_id)
    conn.execute(delete(users).where(users.c.id == user_id))
    return True


def adopt(conn: Connection, name: str, owner: str) -> int | None:
    """Give the user the conversations of an earlier owner (an anonymous browser of
    mode `none`); how many, or None when there is no such user."""
    user_id = conn.scalar(select(users.c.id).where(users.c.name == name))
    if user_id is None:
        return None
    moved = conn.execute(
        update(conversations).where(conversations.c.owner == owner).values(owner=user_id)
    )
    return int(moved.rowcount)


# -- sessions --------------------------------------------------------------------------


def create_session(conn: Connection, user_id: str, key: str, replaces: str | None) -> None:
    """A new session; the one it `replaces` (the browser's earlier one) ends."""
    if replaces is not None:
        conn.execute(delete(sessions).where(sessions.c.id == replaces))
    now = utcnow()
    conn.execute(insert(sessions).values(id=key, user_id=user_id, created_at=now, last_seen_at=now))
    conn.execute(update(users).where(users.c.id == user_id).values(last_seen_at=now))


def session_user(conn: Connection, key: str, not_before: datetime) -> SignedIn | None:
    row = conn.execute(
        select(*USER_COLUMNS, sessions.c.last_seen_at.label("used_at"))
        .join(users, users.c.id == sessions.c.user_id)
        .where(
            sessions.c.id == key,
            sessions.c.last_seen_at >= not_before,
            users.c.disabled.is_(False),
        )
    ).first()
    return None if row is None else SignedIn(user_from_row(row), row.used_at)


def live_sessions(conn: Connection, keys: list[str], not_before: datetime) -> set[str]:
    """Which of `keys` are sessions still good (as `session_user` finds them), at once."""
    rows = conn.execute(
        select(sessions.c.id)
        .join(users, users.c.id == sessions.c.user_id)
        .where(
            sessions.c.id.in_(keys),
            sessions.c.last_seen_at >= not_before,
            users.c.disabled.is_(False),
        )
    )
    return {row.id for row in rows}


def touch_session(conn: Connection, key: str, user_id: str) -> None:
    now = utcnow()
    conn.execute(update(sessions).where(sessions.c.id == key).values(last_seen_at=now))
    conn.execute(update(users).where(users.c.id == user_id).values(last_seen_at=now))


def delete_session(conn: Connection, key: str) -> None:
    conn.execute(delete(sessions).where(sessions.c.id == key))


# -- API tokens ------------------------------------------------------------------------


def create_token(
    conn: Connection, user_id: str, name: str, key: str, expires_at: datetime | None
) -> ApiToken:
    token_id = uuid.uuid4().hex
    conn.execute(
        insert(api_tokens).values(
            id=token_id,
            user_id=user_id,
            name=name,
            token_hash=key,
            created_at=utcnow(),
            expires_at=expires_at,
        )
    )
    return _token(conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).one())


def token_user(conn: Connection, key: str) -> SignedIn | None:
    row = conn.execute(
        select(*USER_COLUMNS, api_tokens.c.last_used_at.label("used_at"))
        .join(users, users.c.id == api_tokens.c.user_id)
        .where(
            api_tokens.c.token_hash == key,
            (api_tokens.c.expires_at.is_(None)) | (api_tokens.c.expires_at > utcnow()),
            users.c.disabled.is_(False),
        )
    ).first()
    return None if row is None else SignedIn(user_from_row(row), row.used_at)


def live_tokens(conn: Connection, keys: list[str]) -> set[str]:
    """Which of `keys` are API tokens still good (as `token_user` finds them), at once."""
    rows = conn.execute(
        select(api_tokens.c.token_hash)
        .join(users, users.c.id == api_tokens.c.user_id)
        .where(
            api_tokens.c.token_hash.in_(keys),
            (api_tokens.c.expires_at.is_(None)) | (api_tokens.c.expires_at > utcnow()),
            users.c.disabled.is_(False),
        )
    )
    return {row.token_hash for row in rows}


def touch_token(conn: Connection, key: str, user_id: str) -> None:
    now = utcnow()
    conn.execute(update(api_tokens).where(api_tokens.c.token_hash == key).values(last_used_at=now))
    conn.execute(update(users).where(users.c.id == user_id).values(last_seen_at=now))


def list_tokens(conn: Connection, user_id: str) -> list[ApiToken]:
    rows = conn.execute(
        select(api_tokens)
        .where(api_tokens.c.user_id == user_id)
        .order_by(api_tokens.c.created_at, api_tokens.c.id)
    )
    return [_token(r) for r in rows]


def delete_token(conn: Connection, user_id: str, token_id: str) -> bool:
    result = conn.execute(
        delete(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.user_id == user_id)
    )
    return bool(result.rowcount)


class AccountStore:
    """The transactions above on a `SqlStore`; each method is one transaction."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    async def add_user(
        self,
        name: str,
        *,
        email: str | None = None,
        password_hash: str | None = None,
        admin: bool = False,
        auth: str = "password",
    ) -> User:
        try:
            return await self._store.run(True, add_user, name, email, password_hash, admin, auth)
        except IntegrityError:  # the same name, added at the same moment elsewhere
            raise NameTaken() from None

    async def user_by_name(self, name: str) -> tuple[User, str | None] | None:
        return await self._store.run(False, user_by_name, name)

    async def password_hash_of(self, user_id: str) -> str | None:
        return await self._store.run(False, password_hash_of, user_id)

    async def list_users(self) -> list[User]:
        return await self._store.run(False, list_users)

    async def set_disabled(self, name: str, disabled: bool) -> bool:
        return await self._store.run(True, set_disabled, name, disabled)

    async def set_password(
        self, user_id: str, password_hash: str, keep_session: str | None = None
    ) -> None:
        await self._store.run(True, set_password, user_id, password_hash, keep_session)

    async def delete_user(self, name: str) -> bool:
        return await self._store.run(True, delete_user, name)

    async def adopt(self, name: str, owner: str) -> int | None:
        return await self._store.run(True, adopt, name, owner)

    async def create_session(self, user_id: str, key: str, replaces: str | None) -> None:
        await self._store.run(True, create_session, user_id, key, replaces)

    async def session_user(self, key: str, not_before: datetime) -> SignedIn | None:
        return await self._store.run(False, session_user, key, not_before)

    async def live_sessions(self, keys: list[str], not_before: datetime) -> set[str]:
        return await self._store.run(False, live_sessions, keys, not_before)

    async def touch_session(self, key: str, user_id: str) -> None:
        await self._store.run(True, touch_session, key, user_id)

    async def delete_session(self, key: str) -> None:
        await self._store.run(True, delete_session, key)

    async def create_token(
        self, user_id: str, name: str, key: str, expires_at: datetime | None = None
    ) -> ApiToken:
        return await self._store.run(True, create_token, user_id, name, key, expires_at)

    async def token_user(self, key: str) -> SignedIn | None:
        return await self._store.run(False, token_user, key)

    async def live_tokens(self, keys: list[str]) -> set[str]:
        return await self._store.run(False, live_tokens, keys)

    async def touch_token(self, key: str, user_id: str) -> None:
        await self._store.run(True, touch_token, key, user_id)

    async def list_tokens(self, user_id: str) -> list[ApiToken]:
        return await self._store.run(False, list_tokens, user_id)

    async def delete_token(self, user_id: str, token_id: str) -> bool:
        return await self._store.run(True, delete_token, user_id, token_id)

    async def count_running(self, owner: str) -> int:
        """See `store.running`: the limit's early check, before a request stores anything."""
        return await self._store.read_one(count_running, owner)
