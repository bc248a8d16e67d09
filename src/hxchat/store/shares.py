"""Share links (#12): read-only snapshots of a conversation's path.

Sharing copies the messages the conversation shows at that moment into
`shared_messages`: the link shows those copies, so nothing said later (or edited,
regenerated, selected) ever reaches it. Each share is found by the SHA-256 of its
link's random token (`auth.secrets.digest`): the database never holds a link that
works, as it never holds a session. For the same reason an old link cannot be shown
again: sharing again makes a new snapshot under a new link, and the earlier links keep
showing theirs until the owner stops sharing (which ends every link of the
conversation). A share goes with its conversation (ON DELETE CASCADE), also when its
owner is deleted.

Files: a shared message keeps the id of the message it copies (`message_id`), so the
files of a share are exactly those of its messages' ids; whoever may open the share
may fetch those, and no one else (the attachments' routes ask `SharedMessage.message_id`).

Like `queries`, each function is one whole transaction on the connection it is given;
`ShareStore` runs them on a `SqlStore`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.engine import Connection

from hxchat.domain import MessageStatus, Role, Source
from hxchat.errors import Busy, HxchatError, NotFound
from hxchat.store import leases, queries
from hxchat.store.records import sources_from_json, sources_to_json
from hxchat.store.tables import conversations, shared_messages, shares, utcnow

if TYPE_CHECKING:
    from hxchat.store.sql import SqlStore


class NothingToShare(HxchatError):
    status_code = 422
    default_detail = "There is nothing to share yet: the conversation has no messages."


STILL_WRITTEN = "An answer is still being written in this conversation; share it once it has ended."


@dataclass(frozen=True, slots=True)
class SharedMessage:
    """A copy of one message of a shared path."""

    message_id: int  # the message it copies (its files are the share's files)
    role: Role
    content: str
    status: MessageStatus
    sources: tuple[Source, ...] = ()
    error: str | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a share link shows: the title and the path when it was shared."""

    title: str
    created_at: datetime
    messages: tuple[SharedMessage, ...]


_OWNED = select(conversations.c.id).where(leases.OWNED)
_SHARE = select(shares).where(shares.c.id == bindparam("key"))
_MESSAGES = (
    select(shared_messages)
    .where(shared_messages.c.share_id == bindparam("key"))
    .order_by(shared_messages.c.position)
)
_SHARES_OF = select(shares.c.id).where(shares.c.conversation_id == bindparam("conversation"))
_STOP = delete(shares).where(shares.c.conversation_id == bindparam("conversation"))


def create(conn: Connection, owner: str, conversation_id: str, key: str) -> None:
    """A new share of the path the conversation shows now, found by `key`."""
    conversation = queries.get_conversation(conn, owner, conversation_id)
    if conversation is None:
        raise NotFound()
    if not conversation.messages:
        raise NothingToShare()
    if any(m.status is MessageStatus.STREAMING for m in conversation.messages):
        raise Busy(STILL_WRITTEN)
    conn.execute(
        insert(shares).values(
            id=key,
            conversation_id=conversation_id,
            title=conversation.title,
            created_at=utcnow(),
        )
    )
    conn.execute(
        insert(shared_messages),
        [
            {
                "share_id": key,
                "position": position,
                "message_id": m.id,
                "role": m.role.value,
                "content": m.content,
                "status": m.status.value,
                "sources": sources_to_json(m.sources),
                "error": m.error,
                "model": m.model,
            }
            for position, m in enumerate(conversation.messages)
        ],
    )


def stop(conn: Connection, owner: str, conversation_id: str) -> None:
    """Every link of the conversation stops working; `NotFound` when it is not the owner's."""
    if conn.scalar(_OWNED, {"conversation": conversation_id, "owned_by": owner}) is None:
        raise NotFound()
    conn.execute(_STOP, {"conversation": conversation_id})


def snapshot(conn: Connection, key: str) -> Snapshot | None:
    """What the link whose token has this digest shows, or None (no such link)."""
    head = conn.execute(_SHARE, {"key": key}).first()
    if head is None:
        return None
    rows = conn.execute(_MESSAGES, {"key": key}).all()
    return Snapshot(
        title=head.title,
        created_at=head.created_at,
        messages=tuple(
            SharedMessage(
                message_id=row.message_id,
                role=Role(row.role),
                content=row.content,
                status=MessageStatus(row.status),
                sources=sources_from_json(row.sources),
                error=row.error,
                model=row.model,
            )
            for row in rows
        ),
    )


def shared(conn: Connection, conversation_id: str) -> set[str]:
    """The keys of the conversation's links (the caller has checked its owner)."""
    return set(conn.scalars(_SHARES_OF, {"conversation": conversation_id}))


class ShareStore:
    """The transactions above on a `SqlStore`; each method is one transaction."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    async def create(self, owner: str, conversation_id: str, key: str) -> None:
        await self._store.run(True, create, owner, conversation_id, key)

    async def stop(self, owner: str, conversation_id: str) -> None:
        await self._store.run(True, stop, owner, conversation_id)

    async def snapshot(self, key: str) -> Snapshot | None:
        return await self._store.run(False, snapshot, key)

    async def shared(self, conversation_id: str) -> set[str]:
        return await self._store.run(False, shared, conversation_id)
