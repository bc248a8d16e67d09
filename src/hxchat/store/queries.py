"""Conversations and turns, as transactions on one connection.

Each public function here is one whole transaction of `SqlStore`, synchronous, run
on the connection it is given (in the SQLite thread, or through `run_sync` on
PostgreSQL). The rules about the conversation lock and the lease are in `leases`,
those about values (titles, sources as JSON) in `records`.
"""

from __future__ import annotations

import uuid

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from hxchat.domain import MessageStatus, Role, Turn
from hxchat.errors import NothingToRetry
from hxchat.store import leases, pieces
from hxchat.store.base import Conversation, ConversationSummary, TurnStarted
from hxchat.store.records import DEFAULT_TITLE, make_title, message_from_row, seen_statuses
from hxchat.store.tables import conversations, messages, utcnow

# The statements are built once (see `leases`); their values are bound at execution.

_INSERT_CONVERSATION = insert(conversations)  # values: a dict of columns
_CONVERSATIONS_OF = (
    select(conversations.c.id, conversations.c.title, conversations.c.updated_at)
    .where(conversations.c.owner == bindparam("owned_by"))
    .order_by(conversations.c.updated_at.desc(), conversations.c.id)
    .limit(bindparam("limit"))
)
_CONVERSATION = select(conversations).where(leases.OWNED)
_MESSAGES_OF = (
    select(messages)
    .where(messages.c.conversation_id == bindparam("conversation"))
    .order_by(messages.c.id)
)
_ACTIVE_GENERATION = (
    select(conversations.c.active_generation_id)
    .where(leases.OWNED)
    .with_for_update()  # a turn starting now waits, then finds it gone
)
_DELETE_CONVERSATION = delete(conversations).where(conversations.c.id == bindparam("conversation"))
_HAS_USER_MESSAGE = (
    select(messages.c.id)
    .where(
        messages.c.conversation_id == bindparam("conversation"),
        messages.c.role == Role.USER.value,
    )
    .limit(1)
)
_SET_TITLE = (
    update(conversations)
    .where(conversations.c.id == bindparam("conversation"))
    .values(title=bindparam("new_title"))
)
_LAST_USER_MESSAGE = select(func.max(messages.c.id)).where(
    messages.c.conversation_id == bindparam("conversation"),
    messages.c.role == Role.USER.value,
)
_DELETE_ANSWERS_AFTER = delete(messages).where(
    messages.c.conversation_id == bindparam("conversation"),
    messages.c.role == Role.ASSISTANT.value,
    messages.c.id > bindparam("after"),
)
_HISTORY = (
    select(messages.c.role, messages.c.content)
    .where(
        messages.c.conversation_id == bindparam("conversation"),
        messages.c.id < bindparam("before"),
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


def create_conversation(conn: Connection, owner: str) -> str:
    conversation_id = uuid.uuid4().hex
    now = utcnow()
    conn.execute(
        _INSERT_CONVERSATION,
        {
            "id": conversation_id,
            "owner": owner,
            "title": DEFAULT_TITLE,
            "created_at": now,
            "updated_at": now,
            "active_generation_id": None,
        },
    )
    return conversation_id


def list_conversations(conn: Connection, owner: str, limit: int) -> list[ConversationSummary]:
    rows = conn.execute(_CONVERSATIONS_OF, {"owned_by": owner, "limit": limit}).all()
    return [ConversationSummary(id=r.id, title=r.title, updated_at=r.updated_at) for r in rows]


def get_conversation(conn: Connection, owner: str, conversation_id: str) -> Conversation | None:
    head = conn.execute(_CONVERSATION, {"conversation": conversation_id, "owned_by": owner}).first()
    if head is None:
        return None
    rows = conn.execute(_MESSAGES_OF, {"conversation": conversation_id}).all()
    streaming = {row.id: row.content for row in rows if row.status == leases.STREAMING}
    texts = pieces.texts(conn, streaming)  # the answer being written, with its checkpoints
    return Conversation(
        id=head.id,
        owner=head.owner,
        title=head.title,
        created_at=head.created_at,
        updated_at=head.updated_at,
        messages=tuple(message_from_row(row, texts.get(row.id)) for row in rows),
    )


def delete_conversation(conn: Connection, owner: str, conversation_id: str) -> str | None:
    row = conn.execute(
        _ACTIVE_GENERATION, {"conversation": conversation_id, "owned_by": owner}
    ).first()
    if row is None:
        return None
    conn.execute(_DELETE_CONVERSATION, {"conversation": conversation_id})
    return str(row.active_generation_id or "")


def start_turn(
    conn: Connection,
    owner: str,
    conversation_id: str,
    content: str,
    generation_id: str,
    worker_id: str,
    lease_seconds: float,
) -> TurnStarted:
    now = utcnow()
    leases.lock(conn, owner, conversation_id, generation_id)
    if conn.scalar(_HAS_USER_MESSAGE, {"conversation": conversation_id}) is None:
        conn.execute(
            _SET_TITLE, {"conversation": conversation_id, "new_title": make_title(content)}
        )
    user_result = conn.execute(
        leases.INSERT_MESSAGE,
        {
            "conversation_id": conversation_id,
            "role": Role.USER.value,
            "content": content,
            "status": MessageStatus.COMPLETE.value,
            "sources": "[]",
            "created_at": now,
            "updated_at": now,
        },
    )
    user_message_id = int(user_result.scalar_one())
    return _answer_placeholder(
        conn, conversation_id, generation_id, worker_id, lease_seconds, user_message_id
    )


def start_retry(
    conn: Connection,
    owner: str,
    conversation_id: str,
    generation_id: str,
    worker_id: str,
    lease_seconds: float,
) -> TurnStarted:
    leases.lock(conn, owner, conversation_id, generation_id)
    last_user_id = conn.scalar(_LAST_USER_MESSAGE, {"conversation": conversation_id})
    if last_user_id is None:
        raise NothingToRetry()  # rolls the lock back too
    conn.execute(_DELETE_ANSWERS_AFTER, {"conversation": conversation_id, "after": last_user_id})
    return _answer_placeholder(conn, conversation_id, generation_id, worker_id, lease_seconds)


def _answer_placeholder(
    conn: Connection,
    conversation_id: str,
    generation_id: str,
    worker_id: str,
    lease_seconds: float,
    user_message_id: int | None = None,
) -> TurnStarted:
    """The streaming assistant message a turn (or a retry) is answered into."""
    assistant_message_id = leases.insert_placeholder(
        conn, conversation_id, generation_id, worker_id, lease_seconds
    )
    return TurnStarted(
        conversation_id=conversation_id,
        generation_id=generation_id,
        assistant_message_id=assistant_message_id,
        user_message_id=user_message_id,
        history=tuple(history(conn, conversation_id, assistant_message_id)),
    )


def history(conn: Connection, conversation_id: str, before_message_id: int) -> list[Turn]:
    # Only ended answers: their checkpoints' pieces are merged into `content` already.
    rows = conn.execute(
        _HISTORY, {"conversation": conversation_id, "before": before_message_id}
    ).all()
    return [Turn(role=Role(row.role), content=row.content) for row in rows]
