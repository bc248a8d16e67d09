"""The `Store` on SQLAlchemy (async): SQLite by default, PostgreSQL for many hosts.

Each method is one short transaction; those that write begin with `BEGIN IMMEDIATE`
on SQLite (see `engine`). The concurrency rules (the per-conversation lock and the
generation lease) live in `leases`; the rules about values (titles, sources as JSON)
in `records`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from sqlalchemy import Insert, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hxchat.domain import MessageStatus, Role, Source, Turn
from hxchat.errors import NothingToRetry
from hxchat.store import leases
from hxchat.store.base import (
    Conversation,
    ConversationSummary,
    Generation,
    Store,
    TurnStarted,
)
from hxchat.store.engine import make_engine, parse_url, transaction, writer
from hxchat.store.records import (
    DEFAULT_TITLE,
    make_title,
    message_from_row,
    seen_statuses,
)
from hxchat.store.tables import conversations, messages, settings, utcnow

SIGNING_KEY_ROW = "secret_key"  # the `settings` row that keeps it


class SqlStore:
    """Conversations and messages in a SQL database (see `hxchat.store.base.Store`)."""

    def __init__(self, database_url: str) -> None:
        self._url = parse_url(database_url)
        self._engine = make_engine(database_url)
        self._writer = writer(self._engine)

    @property
    def engine(self) -> AsyncEngine:
        """The underlying engine (for migrations and tests)."""
        return self._engine

    def _read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return transaction(self._engine, self._url)

    def _write(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return transaction(self._writer, self._url)

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the database answers."""
        async with self._read() as conn:
            await conn.execute(select(1))

    async def close(self) -> None:
        """Close every pooled connection."""
        await self._engine.dispose()

    async def secret_key(self, candidate: str) -> str:
        """The shared signing key: `candidate` is kept if none is stored yet (race-safe)."""
        values = {"key": SIGNING_KEY_ROW, "value": candidate}
        statement: Insert
        if self._url.get_backend_name() == "postgresql":
            statement = pg_insert(settings).values(values).on_conflict_do_nothing()
        else:
            statement = sqlite_insert(settings).values(values).on_conflict_do_nothing()
        async with self._write() as conn:
            await conn.execute(statement)
            stored = await conn.scalar(
                select(settings.c.value).where(settings.c.key == SIGNING_KEY_ROW)
            )
        return str(stored)

    # -- conversations ------------------------------------------------------------

    async def create_conversation(self, owner: str) -> str:
        """A new, empty conversation; returns its id."""
        conversation_id = uuid.uuid4().hex
        now = utcnow()
        async with self._write() as conn:
            await conn.execute(
                insert(conversations).values(
                    id=conversation_id,
                    owner=owner,
                    title=DEFAULT_TITLE,
                    created_at=now,
                    updated_at=now,
                    active_generation_id=None,
                )
            )
        return conversation_id

    async def list_conversations(self, owner: str, limit: int = 200) -> list[ConversationSummary]:
        """The owner's conversations, last activity first."""
        query = (
            select(conversations.c.id, conversations.c.title, conversations.c.updated_at)
            .where(conversations.c.owner == owner)
            .order_by(conversations.c.updated_at.desc(), conversations.c.id)
            .limit(limit)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [ConversationSummary(id=r.id, title=r.title, updated_at=r.updated_at) for r in rows]

    async def get_conversation(self, owner: str, conversation_id: str) -> Conversation | None:
        """One conversation with all its messages in order, or None (absent or foreign)."""
        async with self._read() as conn:
            head = (
                await conn.execute(
                    select(conversations).where(leases.owned(owner, conversation_id))
                )
            ).first()
            if head is None:
                return None
            rows = (
                await conn.execute(
                    select(messages)
                    .where(messages.c.conversation_id == conversation_id)
                    .order_by(messages.c.id)
                )
            ).all()
        return Conversation(
            id=head.id,
            owner=head.owner,
            title=head.title,
            created_at=head.created_at,
            updated_at=head.updated_at,
            messages=tuple(message_from_row(row) for row in rows),
        )

    async def delete_conversation(self, owner: str, conversation_id: str) -> str | None:
        """Delete it with its messages; the running generation's id, "" or None."""
        async with self._write() as conn:
            row = (
                await conn.execute(
                    select(conversations.c.active_generation_id)
                    .where(leases.owned(owner, conversation_id))
                    .with_for_update()  # a turn starting now waits, then finds it gone
                )
            ).first()
            if row is None:
                return None
            await conn.execute(delete(conversations).where(conversations.c.id == conversation_id))
        return str(row.active_generation_id or "")

    # -- turns ----------------------------------------------------------------------

    async def start_turn(
        self,
        owner: str,
        conversation_id: str,
        content: str,
        generation_id: str,
        worker_id: str,
        lease_seconds: float,
    ) -> TurnStarted:
        """Store the user's message and an assistant placeholder (status streaming)."""
        now = utcnow()
        async with self._write() as conn:
            await leases.lock(conn, owner, conversation_id, generation_id)
            has_user_message = await conn.scalar(
                select(messages.c.id)
                .where(
                    messages.c.conversation_id == conversation_id,
                    messages.c.role == Role.USER.value,
                )
                .limit(1)
            )
            if has_user_message is None:
                await conn.execute(
                    update(conversations)
                    .where(conversations.c.id == conversation_id)
                    .values(title=make_title(content))
                )
            user_result = await conn.execute(
                insert(messages)
                .values(
                    conversation_id=conversation_id,
                    role=Role.USER.value,
                    content=content,
                    status=MessageStatus.COMPLETE.value,
                    sources="[]",
                    created_at=now,
                    updated_at=now,
                )
                .returning(messages.c.id)
            )
            user_message_id = int(user_result.scalar_one())
            assistant_message_id = await leases.insert_placeholder(
                conn, conversation_id, generation_id, worker_id, lease_seconds
            )
        return TurnStarted(
            conversation_id=conversation_id,
            generation_id=generation_id,
            assistant_message_id=assistant_message_id,
            user_message_id=user_message_id,
        )

    async def start_retry(
        self,
        owner: str,
        conversation_id: str,
        generation_id: str,
        worker_id: str,
        lease_seconds: float,
    ) -> TurnStarted:
        """Replace the last assistant answer by a new placeholder."""
        async with self._write() as conn:
            await leases.lock(conn, owner, conversation_id, generation_id)
            last_user_id = await conn.scalar(
                select(func.max(messages.c.id)).where(
                    messages.c.conversation_id == conversation_id,
                    messages.c.role == Role.USER.value,
                )
            )
            if last_user_id is None:
                raise NothingToRetry()  # rolls the lock back too
            await conn.execute(
                delete(messages).where(
                    messages.c.conversation_id == conversation_id,
                    messages.c.role == Role.ASSISTANT.value,
                    messages.c.id > last_user_id,
                )
            )
            assistant_message_id = await leases.insert_placeholder(
                conn, conversation_id, generation_id, worker_id, lease_seconds
            )
        return TurnStarted(
            conversation_id=conversation_id,
            generation_id=generation_id,
            assistant_message_id=assistant_message_id,
            user_message_id=None,
        )

    async def history(self, conversation_id: str, before_message_id: int) -> list[Turn]:
        """What the model sees before `before_message_id`, oldest first."""
        query = (
            select(messages.c.role, messages.c.content)
            .where(
                messages.c.conversation_id == conversation_id,
                messages.c.id < before_message_id,
                or_(
                    messages.c.role == Role.USER.value,
                    and_(
                        messages.c.role == Role.ASSISTANT.value,
                        messages.c.status.in_(seen_statuses()),
                        messages.c.content != "",
                    ),
                ),
            )
            .order_by(messages.c.id)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [Turn(role=Role(row.role), content=row.content) for row in rows]

    # -- generations ------------------------------------------------------------------

    async def get_generation(
        self, generation_id: str, owner: str | None = None
    ) -> Generation | None:
        """The generation, scoped to `owner` unless it is None (internal callers)."""
        async with self._read() as conn:
            return await leases.select_generation(conn, generation_id, owner)

    async def checkpoint(
        self,
        generation_id: str,
        content: str,
        sources: Sequence[Source],
        worker_id: str,
        lease_seconds: float,
    ) -> bool:
        """Save the partial answer and renew the lease; False when it is not ours any more."""
        async with self._write() as conn:
            return await leases.renew(
                conn, generation_id, content, sources, worker_id, lease_seconds
            )

    async def checkpoint_many(
        self,
        partials: Sequence[tuple[str, str, Sequence[Source]]],
        worker_id: str,
        lease_seconds: float,
    ) -> set[str]:
        """`checkpoint` for many generations in one transaction; returns the ids no
        longer held by `worker_id`."""
        lost: set[str] = set()
        if not partials:
            return lost
        async with self._write() as conn:
            for generation_id, content, sources in partials:
                held = await leases.renew(
                    conn, generation_id, content, sources, worker_id, lease_seconds
                )
                if not held:
                    lost.add(generation_id)
        return lost

    async def finish(
        self,
        generation_id: str,
        *,
        content: str,
        status: MessageStatus,
        sources: Sequence[Source],
        error: str | None,
        search_suggestions: str | None,
        final_event_id: str | None,
        worker_id: str | None,
    ) -> bool:
        """Store the final answer and release the conversation; False if nothing changed."""
        async with self._write() as conn:
            return await leases.release(
                conn,
                generation_id,
                content=content,
                status=status,
                sources=sources,
                error=error,
                search_suggestions=search_suggestions,
                final_event_id=final_event_id,
                worker_id=worker_id,
            )

    async def sweep_expired(
        self, include_live: bool = False, spare_worker: str | None = None
    ) -> list[Generation]:
        """Mark answers whose lease expired `interrupted`, release them, return them."""
        async with self._write() as conn:
            return await leases.sweep(conn, include_live, spare_worker)


async def open_store(database_url: str) -> SqlStore:
    """A `SqlStore` whose database has answered; raises `StoreUnavailable` otherwise."""
    store = SqlStore(database_url)
    try:
        await store.ping()
    except BaseException:
        await store.close()
        raise
    return store


if TYPE_CHECKING:
    _implements_the_protocol: type[Store] = SqlStore
