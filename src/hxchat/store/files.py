"""Files and their links to messages, as transactions on one connection (#11).

Like `queries`, each public function is one transaction of its caller (`Files` in
`hxchat.files.service` runs them on the `SqlStore`), or a step of one (`link`,
`copy_links`, `of_messages`, `release_conversation`, `forget_owner` run inside the
store's own transactions). Every lookup by id is scoped to the owner: another owner's
file is as absent as one that does not exist.

A content row (`file_contents`) is written in the same transaction as its first file,
after its bytes are in the storage; once no file of its owner has its SHA-256 it is an
orphan, and `take_orphans` hands its keys to the caller to delete from the storage.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, and_, bindparam, delete, exists, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from hxchat.errors import Busy, NotFound
from hxchat.store.base import StoredFile
from hxchat.store.tables import (
    file_contents,
    files,
    message_files,
    messages,
    shared_messages,
    utcnow,
)

NO_SUCH_FILE = "There is no such file."
FILE_IN_USE = "The file belongs to a message; delete the conversation to delete it."

_COLUMNS = (
    files.c.id,
    files.c.owner,
    files.c.name,
    files.c.media_type,
    files.c.size,
    files.c.sha256,
)
_LINKED = exists().where(message_files.c.file_id == files.c.id)
# Built once: read at the start of every answer (its history's files), and a statement
# made per call costs SQLAlchemy ~0.4 ms to build and key, ten times its execution.
_OF_MESSAGES = (
    select(message_files.c.message_id, *_COLUMNS)
    .join(files, files.c.id == message_files.c.file_id)
    .where(message_files.c.message_id.in_(bindparam("message_ids", expanding=True)))
    .order_by(message_files.c.message_id, message_files.c.position)
)


def _stored(row: Any) -> StoredFile:
    return StoredFile(
        id=row.id,
        owner=row.owner,
        name=row.name,
        media_type=row.media_type,
        size=int(row.size),
        sha256=row.sha256,
    )


def add(
    conn: Connection, owner: str, name: str, media_type: str, size: int, sha256: str
) -> StoredFile:
    """A new file of `owner` whose content (`sha256`) is already in the storage."""
    now = utcnow()
    values = {"owner": owner, "sha256": sha256, "media_type": media_type, "created_at": now}
    statement: Insert
    if conn.dialect.name == "postgresql":
        statement = pg_insert(file_contents).values(values).on_conflict_do_nothing()
    else:
        statement = sqlite_insert(file_contents).values(values).on_conflict_do_nothing()
    conn.execute(statement)
    stored = StoredFile(uuid.uuid4().hex, owner, name, media_type, size, sha256)
    conn.execute(
        insert(files).values(
            id=stored.id,
            owner=owner,
            name=name,
            media_type=media_type,
            size=size,
            sha256=sha256,
            created_at=now,
        )
    )
    return stored


def find(conn: Connection, owner: str, file_id: str) -> StoredFile | None:
    row = conn.execute(
        select(*_COLUMNS).where(files.c.id == file_id, files.c.owner == owner)
    ).first()
    return None if row is None else _stored(row)


def remove(conn: Connection, owner: str, file_id: str) -> None:
    """Delete a file no message uses: `NotFound`, or `Busy` (409) when one does. Its
    content, if now an orphan, is left to `take_orphans`."""
    row = conn.execute(
        select(files.c.id, _LINKED.label("linked")).where(
            files.c.id == file_id, files.c.owner == owner
        )
    ).first()
    if row is None:
        raise NotFound(NO_SUCH_FILE)
    if row.linked:
        raise Busy(FILE_IN_USE)
    conn.execute(delete(files).where(files.c.id == file_id))


def link(conn: Connection, owner: str, message_id: int, file_ids: Sequence[str]) -> list[str]:
    """The message carries these files of `owner`, in order; their names. `NotFound`
    (rolling the whole turn back) when any is not the owner's."""
    if not file_ids:
        return []
    rows = conn.execute(
        select(files.c.id, files.c.name).where(
            files.c.id.in_(set(file_ids)), files.c.owner == owner
        )
    )
    found = {row.id: row.name for row in rows}
    if any(file_id not in found for file_id in file_ids):
        raise NotFound(NO_SUCH_FILE)
    conn.execute(
        insert(message_files),
        [
            {"message_id": message_id, "position": position, "file_id": file_id}
            for position, file_id in enumerate(file_ids)
        ],
    )
    return [found[file_id] for file_id in file_ids]


def copy_links(conn: Connection, from_message: int, to_message: int) -> None:
    """A new version of a message keeps the files of the one it replaces."""
    rows = conn.execute(
        select(message_files.c.position, message_files.c.file_id).where(
            message_files.c.message_id == from_message
        )
    ).all()
    if rows:
        conn.execute(
            insert(message_files),
            [
                {"message_id": to_message, "position": r.position, "file_id": r.file_id}
                for r in rows
            ],
        )


def of_messages(conn: Connection, message_ids: Sequence[int]) -> dict[int, tuple[StoredFile, ...]]:
    """The files of each of these messages, in order (messages without any are absent)."""
    if not message_ids:
        return {}
    rows = conn.execute(_OF_MESSAGES, {"message_ids": list(message_ids)}).all()
    found: dict[int, list[StoredFile]] = {}
    for row in rows:
        found.setdefault(row.message_id, []).append(_stored(row))
    return {message_id: tuple(stored) for message_id, stored in found.items()}


def in_share(conn: Connection, share_key: str, file_id: str) -> StoredFile | None:
    """A file of one of the messages a share link copies (#12), or None: whoever may
    open the link may fetch these, and no other file."""
    row = conn.execute(
        select(*_COLUMNS)
        .join(message_files, message_files.c.file_id == files.c.id)
        .join(shared_messages, shared_messages.c.message_id == message_files.c.message_id)
        .where(shared_messages.c.share_id == share_key, files.c.id == file_id)
        .limit(1)
    ).first()
    return None if row is None else _stored(row)


def release_conversation(conn: Connection, conversation_id: str) -> list[str]:
    """Before a conversation is deleted: the ids of the files its messages use (call
    `forget_unlinked` with them once the messages, and so the links, are gone)."""
    return list(
        conn.scalars(
            select(message_files.c.file_id)
            .join(messages, messages.c.id == message_files.c.message_id)
            .where(messages.c.conversation_id == conversation_id)
            .distinct()
        )
    )


def forget_unlinked(conn: Connection, file_ids: Sequence[str]) -> None:
    """Delete those of these files that no message uses any more."""
    if file_ids:
        conn.execute(delete(files).where(files.c.id.in_(list(file_ids)), ~_LINKED))


def forget_owner(conn: Connection, owner: str) -> None:
    """Every file of an owner (a user being deleted, after their conversations)."""
    conn.execute(delete(files).where(files.c.owner == owner))


def sweep(conn: Connection, created_before: datetime) -> int:
    """Delete the files created before then that no message uses; how many."""
    result = conn.execute(delete(files).where(files.c.created_at < created_before, ~_LINKED))
    return int(result.rowcount or 0)


def take_orphans(
    conn: Connection, owner: str | None, limit: int = 500
) -> list[tuple[str, str, str]]:
    """Delete the rows of contents no file of their owner has any more (of `owner`,
    or of everyone), and return their (owner, sha256, media type) for the caller to
    delete from the storage."""
    used = exists().where(
        and_(files.c.owner == file_contents.c.owner, files.c.sha256 == file_contents.c.sha256)
    )
    query = select(file_contents.c.owner, file_contents.c.sha256, file_contents.c.media_type).where(
        ~used
    )
    if owner is not None:
        query = query.where(file_contents.c.owner == owner)
    rows = conn.execute(query.limit(limit)).all()
    for row in rows:
        conn.execute(
            delete(file_contents).where(
                file_contents.c.owner == row.owner, file_contents.c.sha256 == row.sha256
            )
        )
    return [(row.owner, row.sha256, row.media_type) for row in rows]
