"""Users as the other sign-ins and the admin page see them.

- OpenID Connect: a user is the pair (issuer, subject) of the `users` table; the
  first sign-in makes the row, later ones find it (and keep its e-mail current).
- Header mode: the trusted proxy's header names the user; the first request that
  names a new one makes the row.
- `/admin`: every user with what they have used, and disable or enable one by id.

Like `store.accounts`, each function is one transaction on the connection it is given;
`UserDirectory` runs them on a `SqlStore`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from hxchat.domain import Role
from hxchat.store.accounts import USER_COLUMNS, NameTaken, User, end_sign_ins, user_from_row
from hxchat.store.tables import api_tokens, conversations, messages, users, utcnow

if TYPE_CHECKING:
    from hxchat.store.sql import SqlStore


@dataclass(frozen=True, slots=True)
class Usage:
    """A user and what they have used, for `/admin`."""

    user: User
    conversations: int
    answers: int
    tokens: int  # API tokens
    tokens_used: int  # the model's tokens, in and out, over all their answers (#10)


def user_by_subject(conn: Connection, issuer: str, subject: str) -> User | None:
    row = conn.execute(
        select(*USER_COLUMNS).where(users.c.issuer == issuer, users.c.subject == subject)
    ).first()
    return None if row is None else user_from_row(row)


def add_external(
    conn: Connection,
    names: list[str],
    auth: str,
    email: str | None,
    issuer: str | None,
    subject: str | None,
) -> User:
    """A new user of `auth` under the first of `names` nobody has taken."""
    for name in names:
        if conn.scalar(select(users.c.id).where(users.c.name == name)) is None:
            break
    else:
        raise NameTaken()
    user_id = uuid.uuid4().hex
    now = utcnow()
    conn.execute(
        insert(users).values(
            id=user_id,
            name=name,
            email=email,
            password_hash=None,
            auth=auth,
            issuer=issuer,
            subject=subject,
            admin=False,
            disabled=False,
            created_at=now,
            last_seen_at=now,
        )
    )
    return user_from_row(conn.execute(select(*USER_COLUMNS).where(users.c.id == user_id)).one())


def seen(conn: Connection, user_id: str, email: str | None) -> None:
    values: dict[str, object] = {"last_seen_at": utcnow()}
    if email is not None:
        values["email"] = email
    conn.execute(update(users).where(users.c.id == user_id).values(**values))


def user_named(conn: Connection, name: str) -> User | None:
    row = conn.execute(select(*USER_COLUMNS).where(users.c.name == name)).first()
    return None if row is None else user_from_row(row)


def usage(conn: Connection) -> list[Usage]:
    counted = (
        select(conversations.c.owner, func.count().label("n"))
        .group_by(conversations.c.owner)
        .subquery()
    )
    answered = (
        select(
            conversations.c.owner,
            func.count().label("n"),
            func.sum(
                func.coalesce(messages.c.input_tokens, 0)
                + func.coalesce(messages.c.output_tokens, 0)
            ).label("used"),
        )
        .select_from(messages.join(conversations))
        .where(messages.c.role == Role.ASSISTANT.value)
        .group_by(conversations.c.owner)
        .subquery()
    )
    tokens = (
        select(api_tokens.c.user_id, func.count().label("n"))
        .group_by(api_tokens.c.user_id)
        .subquery()
    )
    rows = conn.execute(
        select(
            *USER_COLUMNS,
            func.coalesce(counted.c.n, 0).label("conversation_count"),
            func.coalesce(answered.c.n, 0).label("answer_count"),
            func.coalesce(answered.c.used, 0).label("tokens_used"),
            func.coalesce(tokens.c.n, 0).label("token_count"),
        )
        .outerjoin(counted, counted.c.owner == users.c.id)
        .outerjoin(answered, answered.c.owner == users.c.id)
        .outerjoin(tokens, tokens.c.user_id == users.c.id)
        .order_by(users.c.name)
    )
    return [
        Usage(
            user_from_row(r),
            int(r.conversation_count),
            int(r.answer_count),
            int(r.token_count),
            int(r.tokens_used),
        )
        for r in rows
    ]


def set_disabled_by_id(conn: Connection, user_id: str, disabled: bool) -> bool:
    done = conn.execute(update(users).where(users.c.id == user_id).values(disabled=disabled))
    if done.rowcount and disabled:
        end_sign_ins(conn, user_id)
    return bool(done.rowcount)


class UserDirectory:
    """The transactions above on a `SqlStore`; each method is one transaction."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    async def user_by_subject(self, issuer: str, subject: str) -> User | None:
        return await self._store.run(False, user_by_subject, issuer, subject)

    async def user_named(self, name: str) -> User | None:
        return await self._store.run(False, user_named, name)

    async def add_external(
        self,
        names: list[str],
        auth: str,
        *,
        email: str | None = None,
        issuer: str | None = None,
        subject: str | None = None,
    ) -> User | None:
        """The new user, or None when another request made them at the same moment."""
        try:
            return await self._store.run(True, add_external, names, auth, email, issuer, subject)
        except (IntegrityError, NameTaken):
            return None

    async def seen(self, user_id: str, email: str | None = None) -> None:
        await self._store.run(True, seen, user_id, email)

    async def usage(self) -> list[Usage]:
        return await self._store.run(False, usage)

    async def set_disabled(self, user_id: str, disabled: bool) -> bool:
        return await self._store.run(True, set_disabled_by_id, user_id, disabled)
