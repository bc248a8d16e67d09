"""The search index kept current with the messages a conversation shows (#12).

The index (built by migration 0009: FTS5 on SQLite, `tsvector`s under GIN on
PostgreSQL) holds the text of every message on the path each conversation shows,
once it is written, and every conversation's title. Titles are kept by triggers in
the database, whoever writes them (a rename, a title written by the model, an
import), and a deleted message or conversation leaves the index with it (a trigger on
SQLite, the foreign keys' cascade on PostgreSQL).

Messages are kept here, by the store's transactions, because only the store knows
the path, which triggers cannot follow (SQLite allows no recursive query in a
trigger):

- an answer when it ends, or is swept as interrupted, with its whole text (`add`;
  while it streams its text is in pieces and it is not found), and with it the user's
  message it answers, if the index does not have it yet (`add_missing`): a question is
  found once its first answer has ended. Indexing a long question (a pasted document)
  costs milliseconds that the request sending it would otherwise wait for before its
  202 (the same work, moved to the end's transaction);
- when the path changes (an edit, a retry or regeneration, another version
  selected), the messages that left it leave the index and those that joined it
  join it (`follow_path`). So an old version is not found: a result always links to
  a message the conversation shows.

Whoever writes messages outside these transactions (an import) calls
`follow_path(conn, conversation_id, None, leaf)` for each conversation it wrote.
Every function runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from hxchat.store import tree

# The rows of the messages `ids` as the index keeps them: written and not streaming.
_SQLITE_ADD = text(
    "INSERT INTO search_index (rowid, owner, conversation, title, body)"
    " SELECT m.id, hex(c.owner), hex(c.id), '', m.content"
    " FROM messages AS m JOIN conversations AS c ON c.id = m.conversation_id"
    " WHERE m.id IN (SELECT value FROM json_each(:ids))"
    " AND m.content <> '' AND m.status <> 'streaming'"
)
_SQLITE_ADD_MISSING = text(  # the same, for the rows the index lacks (by rowid)
    _SQLITE_ADD.text + " AND NOT EXISTS (SELECT 1 FROM search_index WHERE rowid = m.id)"
)
_SQLITE_REMOVE = text("DELETE FROM search_index WHERE rowid IN (SELECT value FROM json_each(:ids))")
_POSTGRES_ADD = text(
    "INSERT INTO search_messages (message_id, conversation_id, owner, document)"
    " SELECT m.id, c.id, c.owner, to_tsvector('hxchat_search', m.content)"
    " FROM messages AS m JOIN conversations AS c ON c.id = m.conversation_id"
    " WHERE m.id = ANY(CAST(:ids AS INTEGER[]))"
    " AND m.content <> '' AND m.status <> 'streaming'"
    " ON CONFLICT (message_id) DO UPDATE SET document = EXCLUDED.document"
)
_POSTGRES_ADD_MISSING = text(
    "INSERT INTO search_messages (message_id, conversation_id, owner, document)"
    " SELECT m.id, c.id, c.owner, to_tsvector('hxchat_search', m.content)"
    " FROM messages AS m JOIN conversations AS c ON c.id = m.conversation_id"
    " WHERE m.id = ANY(CAST(:ids AS INTEGER[]))"
    " AND m.content <> '' AND m.status <> 'streaming'"
    " ON CONFLICT (message_id) DO NOTHING"
)
_POSTGRES_REMOVE = text(
    "DELETE FROM search_messages WHERE message_id = ANY(CAST(:ids AS INTEGER[]))"
)


def _ids(conn: Connection, ids: Collection[int]) -> dict[str, Any]:
    """The ids as one bound value: a JSON array on SQLite, an array on PostgreSQL."""
    values = sorted(int(i) for i in ids)
    if conn.dialect.name == "postgresql":
        return {"ids": values}
    return {"ids": "[" + ",".join(map(str, values)) + "]"}


def add(conn: Connection, ids: Collection[int]) -> None:
    """Index these messages (those written and not streaming) with their text now."""
    if not ids:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(_POSTGRES_ADD, _ids(conn, ids))
        return
    values = _ids(conn, ids)
    conn.execute(_SQLITE_REMOVE, values)  # FTS5 has no upsert: a row is written once
    conn.execute(_SQLITE_ADD, values)


def add_missing(conn: Connection, ids: Collection[int]) -> None:
    """Index these messages (those written and not streaming) that the index does not
    have yet; those it has are left as they are."""
    if not ids:
        return
    postgres = conn.dialect.name == "postgresql"
    conn.execute(_POSTGRES_ADD_MISSING if postgres else _SQLITE_ADD_MISSING, _ids(conn, ids))


def remove(conn: Connection, ids: Collection[int]) -> None:
    """These messages leave the index (those not in it are left as they were)."""
    if not ids:
        return
    statement = _POSTGRES_REMOVE if conn.dialect.name == "postgresql" else _SQLITE_REMOVE
    conn.execute(statement, _ids(conn, ids))


def follow_path(
    conn: Connection, conversation_id: str, old_leaf: int | None, new_leaf: int | None
) -> None:
    """The conversation's path went from ending at `old_leaf` to ending at `new_leaf`:
    the messages that left it leave the index, those that joined it join it."""
    skeleton = tree.Tree.read(conn, conversation_id)
    before = set(skeleton.path(old_leaf)) if old_leaf is not None else set()
    after = set(skeleton.path(new_leaf)) if new_leaf is not None else set()
    remove(conn, before - after)
    add(conn, after - before)


def in_metadata(name: str | None, type_: str, _parents: Any) -> bool:
    """Alembic's `include_name`: the index's tables (`search_…`, and FTS5's own tables
    on SQLite) are made by migration 0009 alone, not described in `tables.py`."""
    return not (type_ == "table" and name is not None and name.startswith("search_"))
