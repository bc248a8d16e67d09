"""Conversations as hxchat's JSON export: every version of every message.

One conversation is read in one transaction (`conversation`); everything an owner
has (`everything`) is read in batches of `BATCH` conversations holding at most
`BATCH_MESSAGES` messages (or one conversation that holds more), one short read
transaction each, and sent as it is read, so a worker's memory holds one batch
whatever the number of conversations. Batches go by (created_at, id), which never
change: a conversation that is written to while the export runs is neither skipped
nor sent twice; one created meanwhile may come at the end, one deleted may be missing.

The shape (docs/api.md, "Export and import"): a conversation is its `id`, `title`,
times, the `model` it goes on with, `current_message_id` and `path` (the path it
shows) and `messages`, every version, parents first, each with its `parent_id` and
`versions` as `GET /api/conversations/{id}` gives them. Features that add data to a
conversation or a message add a key here (`_conversation_json`, `_message_json`) and
read it back in `hxchat_format`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.engine import Connection

from hxchat.library.hxchat_format import FORMAT, VERSION
from hxchat.store import feedback, leases, pieces
from hxchat.store.base import Feedback
from hxchat.store.records import sources_from_json
from hxchat.store.tables import conversations, messages, utcnow
from hxchat.store.tree import Tree

if TYPE_CHECKING:
    from hxchat.store.sql import SqlStore

BATCH = 100  # conversations per read transaction of a streamed export, at most
BATCH_MESSAGES = 5_000  # and the messages they hold, at most (unless one has more)

_CONVERSATION = select(conversations).where(leases.OWNED)
_FIRST_BATCH = (
    select(conversations)
    .where(conversations.c.owner == bindparam("owned_by"))
    .order_by(conversations.c.created_at, conversations.c.id)
    .limit(bindparam("batch"))
)
_NEXT_BATCH = _FIRST_BATCH.where(
    or_(
        conversations.c.created_at > bindparam("after_time"),
        and_(
            conversations.c.created_at == bindparam("after_time"),
            conversations.c.id > bindparam("after_id"),
        ),
    )
)
_COUNTS = (
    select(messages.c.conversation_id, func.count().label("messages"))
    .where(messages.c.conversation_id.in_(bindparam("conversation_ids", expanding=True)))
    .group_by(messages.c.conversation_id)
)
_MESSAGES = (
    select(
        messages.c.id,
        messages.c.conversation_id,
        messages.c.parent_id,
        messages.c.role,
        messages.c.content,
        messages.c.status,
        messages.c.sources,
        messages.c.model,
        messages.c.error,
        messages.c.created_at,
    )
    .where(messages.c.conversation_id.in_(bindparam("conversation_ids", expanding=True)))
    .order_by(messages.c.conversation_id, messages.c.id)
)


def header() -> dict[str, Any]:
    """What every export document starts with: what it is, and when it was made."""
    return {"format": FORMAT, "version": VERSION, "exported_at": utcnow().isoformat()}


def conversation(conn: Connection, owner: str, conversation_id: str) -> dict[str, Any] | None:
    """One conversation of `owner` as exported, or None (absent or another owner's)."""
    head = conn.execute(_CONVERSATION, {"conversation": conversation_id, "owned_by": owner}).first()
    if head is None:
        return None
    return _shaped(conn, [head])[0]


def batch(conn: Connection, owner: str, after: tuple[datetime, str] | None) -> list[dict[str, Any]]:
    """The next `BATCH` conversations of `owner` after `after` (created_at, id)."""
    if after is None:
        heads = conn.execute(_FIRST_BATCH, {"owned_by": owner, "batch": BATCH}).all()
    else:
        values = {"owned_by": owner, "batch": BATCH, "after_time": after[0], "after_id": after[1]}
        heads = conn.execute(_NEXT_BATCH, values).all()
    return _shaped(conn, _within_budget(conn, heads))


def _within_budget(conn: Connection, heads: Sequence[Any]) -> Sequence[Any]:
    """The first of `heads` whose messages fit in `BATCH_MESSAGES` (at least one), so
    that a batch of long conversations stays as small as one of short ones."""
    if not heads:
        return heads
    rows = conn.execute(_COUNTS, {"conversation_ids": [h.id for h in heads]})
    counts: dict[str, int] = {row.conversation_id: row.messages for row in rows}
    total = 0
    for taken, head in enumerate(heads):
        total += counts.get(head.id, 0)
        if total > BATCH_MESSAGES and taken > 0:
            return heads[:taken]
    return heads


async def everything(store: SqlStore, owner: str) -> AsyncIterator[bytes]:
    """The whole export of `owner` as JSON text, batch by batch."""
    start = json.dumps(header(), ensure_ascii=False)[:-1] + ', "conversations": ['
    yield start.encode()
    after: tuple[datetime, str] | None = None
    first = True
    while True:
        shaped = await store.run(False, batch, owner, after)
        if not shaped:
            break
        parts = [json.dumps(item, ensure_ascii=False) for item in shaped]
        yield (("" if first else ", ") + ", ".join(parts)).encode()
        first = False
        last = shaped[-1]
        after = (datetime.fromisoformat(last["created_at"]), last["id"])
    yield b"]}\n"


def _shaped(conn: Connection, heads: Sequence[Any]) -> list[dict[str, Any]]:
    if not heads:
        return []
    rows: dict[str, list[Any]] = {head.id: [] for head in heads}
    for row in conn.execute(_MESSAGES, {"conversation_ids": list(rows)}):
        rows[row.conversation_id].append(row)
    streaming = {
        row.id: row.content
        for found in rows.values()
        for row in found
        if row.status == leases.STREAMING
    }
    texts = pieces.texts(conn, streaming)  # an answer being written, so far
    answers = [row.id for found in rows.values() for row in found if row.role == "assistant"]
    rated = feedback.of(conn, answers)
    return [_conversation_json(head, rows[head.id], texts, rated) for head in heads]


def _conversation_json(
    head: Any, rows: list[Any], texts: dict[int, str], rated: dict[int, Feedback]
) -> dict[str, Any]:
    tree = Tree()
    for row in rows:
        tree.parents[row.id] = row.parent_id
        tree.children.setdefault(row.parent_id, []).append(row.id)
    path = tree.path(head.current_leaf_id)
    models = {row.id: row.model for row in rows}
    model = next((models[i] for i in reversed(path) if models[i]), None)
    return {
        "id": head.id,
        "title": head.title,
        "created_at": head.created_at.isoformat(),
        "updated_at": head.updated_at.isoformat(),
        "model": model,
        "current_message_id": path[-1] if path else None,
        "path": path,
        "messages": [
            _message_json(row, tree, texts.get(row.id), rated.get(row.id)) for row in rows
        ],
    }


def _message_json(
    row: Any, tree: Tree, content: str | None, rating: Feedback | None
) -> dict[str, Any]:
    return {
        "id": row.id,
        "parent_id": row.parent_id,
        "versions": list(tree.versions(row.id)),
        "role": row.role,
        "content": row.content if content is None else content,
        "status": row.status,
        "sources": [source.as_json() for source in sources_from_json(row.sources)],
        "model": row.model,
        "error": row.error,
        "created_at": row.created_at.isoformat(),
        "feedback": rating.as_json() if rating else None,
    }
