"""The conversation lock and the generation lease, as statements on one connection.

Both are conditional UPDATEs whose row count is the answer, so they hold across
workers and hosts without any lock kept in memory:

- the lock: `conversations.active_generation_id` is set only `WHERE ... IS NULL`;
  two concurrent turns on one conversation cannot both take it (`Busy`).
- the lease: an answer being written belongs to one worker until
  `lease_expires_at`. Only that worker renews or finishes it; the sweeper takes back
  only leases that have expired. Every function here runs inside the caller's
  transaction (see `SqlStore`).

Times come from this process's clock (UTC); hosts sharing a PostgreSQL database are
expected to keep their clocks in sync (NTP), far within a lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hxchat.domain import MessageStatus, Role, Source
from hxchat.errors import Busy, NotFound
from hxchat.store.base import Generation
from hxchat.store.records import generation_from_row, sources_to_json
from hxchat.store.tables import conversations, messages, utcnow

STREAMING = MessageStatus.STREAMING.value


def owned(owner: str, conversation_id: str) -> ColumnElement[bool]:
    """The condition "this conversation, and it belongs to `owner`"."""
    return and_(conversations.c.id == conversation_id, conversations.c.owner == owner)


async def lock(conn: AsyncConnection, owner: str, conversation_id: str, generation_id: str) -> None:
    """Take the conversation for `generation_id`, or raise `NotFound` / `Busy`."""
    result = await conn.execute(
        update(conversations)
        .where(owned(owner, conversation_id), conversations.c.active_generation_id.is_(None))
        .values(active_generation_id=generation_id, updated_at=utcnow())
    )
    if result.rowcount == 1:
        return
    exists = await conn.scalar(select(conversations.c.id).where(owned(owner, conversation_id)))
    raise Busy() if exists is not None else NotFound()


async def insert_placeholder(
    conn: AsyncConnection,
    conversation_id: str,
    generation_id: str,
    worker_id: str,
    lease_seconds: float,
) -> int:
    """The assistant message a new generation writes into, leased to `worker_id`."""
    now = utcnow()
    result = await conn.execute(
        insert(messages)
        .values(
            conversation_id=conversation_id,
            role=Role.ASSISTANT.value,
            content="",
            status=STREAMING,
            sources="[]",
            generation_id=generation_id,
            worker_id=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            created_at=now,
            updated_at=now,
        )
        .returning(messages.c.id)
    )
    return int(result.scalar_one())


async def select_generation(
    conn: AsyncConnection, generation_id: str, owner: str | None
) -> Generation | None:
    """The generation, scoped to `owner` unless it is None."""
    query = (
        select(messages, conversations.c.owner)
        .join(conversations, conversations.c.id == messages.c.conversation_id)
        .where(messages.c.generation_id == generation_id)
    )
    if owner is not None:
        query = query.where(conversations.c.owner == owner)
    row = (await conn.execute(query)).first()
    return None if row is None else generation_from_row(row, row.owner)


async def renew(
    conn: AsyncConnection,
    generation_id: str,
    content: str,
    sources: Sequence[Source],
    worker_id: str,
    lease_seconds: float,
) -> bool:
    """Save the partial answer and extend the lease, only while `worker_id` holds it."""
    now = utcnow()
    result = await conn.execute(
        update(messages)
        .where(
            messages.c.generation_id == generation_id,
            messages.c.status == STREAMING,
            messages.c.worker_id == worker_id,
        )
        .values(
            content=content,
            sources=sources_to_json(sources),
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            updated_at=now,
        )
    )
    return result.rowcount == 1


async def release(
    conn: AsyncConnection,
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
    """Store the final answer and free the conversation; False if it was not ours."""
    if not status.is_final:
        raise ValueError("finish needs a final status, not streaming")
    now = utcnow()
    conditions = [messages.c.generation_id == generation_id, messages.c.status == STREAMING]
    if worker_id is not None:
        conditions.append(messages.c.worker_id == worker_id)
    row = (
        await conn.execute(
            update(messages)
            .where(*conditions)
            .values(
                content=content,
                status=status.value,
                sources=sources_to_json(sources),
                error=error,
                search_suggestions=search_suggestions,
                final_event_id=final_event_id,
                lease_expires_at=None,
                updated_at=now,
            )
            .returning(messages.c.conversation_id)
        )
    ).first()
    if row is None:
        return False
    await conn.execute(
        update(conversations)
        .where(
            conversations.c.id == row.conversation_id,
            conversations.c.active_generation_id == generation_id,
        )
        .values(active_generation_id=None, updated_at=now)
    )
    return True


async def sweep(
    conn: AsyncConnection, include_live: bool = False, spare_worker: str | None = None
) -> list[Generation]:
    """Mark streaming answers whose lease has expired `interrupted` and free them.

    `include_live` takes every streaming answer, leased or not: only for a single
    process at start-up, whose earlier self left them. `spare_worker`'s answers are
    left alone: a worker that sweeps is alive, so its own late leases are only late
    (an overloaded event loop), not dead. Each answer is returned by
    exactly one of several concurrent sweepers: the UPDATE re-checks `status` on a
    row another sweeper has just changed.
    """
    now = utcnow()
    conditions = [messages.c.status == STREAMING]
    if not include_live:
        conditions.append(messages.c.lease_expires_at < now)
    if spare_worker is not None:
        conditions.append(messages.c.worker_id != spare_worker)
    rows = (
        await conn.execute(
            update(messages)
            .where(*conditions)
            .values(status=MessageStatus.INTERRUPTED.value, lease_expires_at=None, updated_at=now)
            .returning(*messages.c)
        )
    ).all()
    if not rows:
        return []
    await conn.execute(
        update(conversations)
        .where(conversations.c.active_generation_id.in_([row.generation_id for row in rows]))
        .values(active_generation_id=None)
    )
    conversation_ids = {row.conversation_id for row in rows}
    owners = {
        row.id: row.owner
        for row in await conn.execute(
            select(conversations.c.id, conversations.c.owner).where(
                conversations.c.id.in_(conversation_ids)
            )
        )
    }
    return [generation_from_row(row, owners[row.conversation_id]) for row in rows]
