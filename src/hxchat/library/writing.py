"""Imported conversations into the database: one transaction, all or nothing.

The messages get their ids before they are written, in the order the import lists
them (parents first), so that one multi-row INSERT writes them all with their parents
and `conversations.current_leaf_id` is known from the start. Ids come from where the
database would take them: PostgreSQL's sequence of `messages.id` (`nextval`, so
concurrent turns never collide), and on SQLite the AUTOINCREMENT counter, read inside
the write transaction (`BEGIN IMMEDIATE`: no one else writes meanwhile), which SQLite
then moves past the ids written. So ids keep growing for everyone (`store/tree.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Connection

from hxchat.library.imported import NewConversation, NewMessage
from hxchat.store import search
from hxchat.store.records import sources_to_json
from hxchat.store.tables import conversations, feedback, messages, utcnow

_INSERT_CONVERSATIONS = insert(conversations)
_INSERT_MESSAGES = insert(messages)
_INSERT_FEEDBACK = insert(feedback)
_SQLITE_COUNTER = text("SELECT seq FROM sqlite_sequence WHERE name = 'messages'")
_SQLITE_HIGHEST = select(func.max(messages.c.id))
_PG_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('messages', 'id')) FROM generate_series(1, :n)"
)


def write(conn: Connection, owner: str, imported: Sequence[NewConversation]) -> list[str]:
    """Store the conversations for `owner`; their new ids, in the file's order."""
    ids = iter(_message_ids(conn, sum(len(c.messages) for c in imported)))
    now = utcnow()
    heads: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    ratings: list[dict[str, Any]] = []
    shown: list[int] = []  # the messages on the paths the conversations show
    for conversation in imported:
        conversation_id = uuid.uuid4().hex
        new_ids = [next(ids) for _ in conversation.messages]
        times = [m.created_at for m in conversation.messages if m.created_at is not None]
        created = conversation.created_at or min(times, default=now)
        for message, message_id in zip(conversation.messages, new_ids, strict=True):
            when = message.created_at or created
            if message.feedback is not None:
                ratings.append(
                    {
                        "message_id": message_id,
                        "rating": message.feedback.rating,
                        "comment": message.feedback.comment,
                        "updated_at": now,
                    }
                )
            rows.append(
                {
                    "id": message_id,
                    "conversation_id": conversation_id,
                    "parent_id": None if message.parent is None else new_ids[message.parent],
                    "role": message.role.value,
                    "content": message.content,
                    "status": message.status.value,
                    "sources": sources_to_json(message.sources),
                    "generation_id": None,
                    "error": message.error,
                    "search_suggestions": None,
                    "final_event_id": None,
                    "worker_id": None,
                    "lease_expires_at": None,
                    "created_at": when,
                    "updated_at": when,
                    "model": message.model,
                    **_cost(message),
                }
            )
        leaf = conversation.leaf
        at = leaf
        while at is not None:
            shown.append(new_ids[at])
            at = conversation.messages[at].parent
        heads.append(
            {
                "id": conversation_id,
                "owner": owner,
                "title": conversation.title,
                "created_at": created,
                "updated_at": _latest(conversation.updated_at, times, created),
                "active_generation_id": None,
                "current_leaf_id": None if leaf is None else new_ids[leaf],
                "pinned": conversation.pinned,
                "title_source": conversation.title_source,
                "instructions": conversation.instructions,
            }
        )
    conn.execute(_INSERT_CONVERSATIONS, heads)
    if rows:
        conn.execute(_INSERT_MESSAGES, rows)
    if ratings:
        conn.execute(_INSERT_FEEDBACK, ratings)
    search.add(conn, shown)  # found by a search as any conversation's path is (#12)
    return [head["id"] for head in heads]


def _cost(message: NewMessage) -> dict[str, int | None]:
    """An answer's tokens and times as columns (None where the file had none)."""
    usage, timing = message.usage, message.timing
    return {
        "input_tokens": usage.input_tokens if usage else None,
        "output_tokens": usage.output_tokens if usage else None,
        "first_text_ms": timing.first_text_ms if timing else None,
        "total_ms": timing.total_ms if timing else None,
    }


def _latest(given: datetime | None, times: list[datetime], created: datetime) -> datetime:
    return given or max(times, default=created)


def _message_ids(conn: Connection, count: int) -> list[int]:
    """`count` new message ids, rising."""
    if count == 0:
        return []
    if conn.dialect.name == "postgresql":
        return sorted(int(value) for value in conn.scalars(_PG_IDS, {"n": count}))
    counter = conn.scalar(_SQLITE_COUNTER) or 0
    highest = conn.scalar(_SQLITE_HIGHEST) or 0
    start = max(int(counter), int(highest)) + 1
    return list(range(start, start + count))
