"""A conversation as a tree of messages, and the one path through it that it shows.

Every message has a `parent_id`, the message it follows (None for a first message);
messages with the same parent are *versions* of one another, oldest first (ids only
grow, so a parent's id is below its children's). The conversation keeps the end of
the path it shows, `current_leaf_id`: the path is that message and its ancestors.
Writing at the end (a new message) moves the leaf down; an edited question or a
regenerated answer is a new sibling, and the leaf moves to its new answer; selecting
a version moves the leaf to the most recently created message below it (the newest
version at each step).

So reading the path is cheap: the tree's skeleton (ids and parents, two integers a
message) is read for the whole conversation, the path and each message's versions are
worked out here, and only the path's messages are read whole. What the model sees is
read with one recursive query up from the new answer's parent.

Every function runs inside the caller's transaction (see `queries`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.engine import Connection

from hxchat.domain import Role, Turn
from hxchat.errors import Busy, NotFound
from hxchat.store import files
from hxchat.store.base import StoredFile
from hxchat.store.records import seen_statuses
from hxchat.store.tables import conversations, messages

NO_SUCH_MESSAGE = "There is no such message."

_SKELETON = (
    select(messages.c.id, messages.c.parent_id)
    .where(messages.c.conversation_id == bindparam("conversation"))
    .order_by(messages.c.id)
)
_LEAF = select(conversations.c.current_leaf_id).where(
    conversations.c.id == bindparam("conversation")
)
_SET_LEAF = (
    update(conversations)
    .where(conversations.c.id == bindparam("conversation"))
    .values(current_leaf_id=bindparam("new_leaf"))
)
# Selecting a version: only while no answer of the conversation is being written.
_SET_LEAF_IF_FREE = (
    update(conversations)
    .where(
        conversations.c.id == bindparam("conversation"),
        conversations.c.owner == bindparam("owned_by"),
        conversations.c.active_generation_id.is_(None),
    )
    .values(current_leaf_id=bindparam("new_leaf"))
)
_MESSAGE_OF_OWNER = (
    select(
        messages.c.id,
        messages.c.conversation_id,
        messages.c.role,
        messages.c.parent_id,
    )
    .join(conversations, conversations.c.id == messages.c.conversation_id)
    .where(messages.c.id == bindparam("message"), conversations.c.owner == bindparam("owned_by"))
)
_PATH_MESSAGES = (
    select(messages)
    .where(messages.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(messages.c.id)
)
_PARENT_OF = select(messages.c.parent_id).where(
    messages.c.id == bindparam("message"),
    messages.c.conversation_id == bindparam("conversation"),
)
_LATEST_BEFORE = select(func.max(messages.c.id)).where(
    messages.c.conversation_id == bindparam("conversation"),
    messages.c.id < bindparam("before"),
)


def _ancestors_statement() -> Any:
    """What the model sees: the message `seed` and its ancestors, oldest first; user
    messages, and the answers whose status the model sees (not empty ones)."""
    path = (
        select(messages.c.id, messages.c.parent_id)
        .where(
            messages.c.id == bindparam("seed"),
            messages.c.conversation_id == bindparam("conversation"),
        )
        .cte("path", recursive=True)
    )
    above = messages.alias("above")
    path = path.union_all(
        select(above.c.id, above.c.parent_id).where(above.c.id == path.c.parent_id)
    )
    return (
        select(messages.c.id, messages.c.role, messages.c.content)
        .where(
            messages.c.id.in_(select(path.c.id)),
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


_ANCESTORS = _ancestors_statement()


@dataclass
class Tree:
    """The skeleton of one conversation's messages: who follows whom."""

    parents: dict[int, int | None] = field(default_factory=dict)
    children: dict[int | None, list[int]] = field(default_factory=dict)  # oldest first

    @classmethod
    def read(cls, conn: Connection, conversation_id: str) -> Tree:
        tree = cls()
        for row in conn.execute(_SKELETON, {"conversation": conversation_id}):
            tree.parents[row.id] = row.parent_id
            tree.children.setdefault(row.parent_id, []).append(row.id)
        return tree

    def path(self, leaf: int | None) -> list[int]:
        """The leaf and its ancestors, first message first. A conversation whose leaf is
        unknown shows the path down the newest versions from its first message."""
        if leaf not in self.parents:
            roots = self.children.get(None)
            if not roots:
                return []
            leaf = self.newest_below(roots[-1])
        ids: list[int] = []
        current: int | None = leaf
        while current is not None and len(ids) <= len(self.parents):  # a cycle cannot loop
            ids.append(current)
            current = self.parents.get(current)
        ids.reverse()
        return ids

    def versions(self, message_id: int) -> tuple[int, ...]:
        """The message and its siblings, oldest first."""
        return tuple(self.children.get(self.parents.get(message_id), (message_id,)))

    def newest_below(self, message_id: int) -> int:
        """The end of the path through `message_id` that takes the newest version at
        every step below it."""
        current = message_id
        for _ in range(len(self.parents)):
            below = self.children.get(current)
            if not below:
                break
            current = below[-1]
        return current


def leaf(conn: Connection, conversation_id: str) -> int | None:
    """The end of the path the conversation shows (None when it is empty)."""
    value = conn.scalar(_LEAF, {"conversation": conversation_id})
    return None if value is None else int(value)


def set_leaf(conn: Connection, conversation_id: str, message_id: int) -> None:
    """The path now ends at `message_id` (a turn holds the conversation's lock)."""
    conn.execute(_SET_LEAF, {"conversation": conversation_id, "new_leaf": message_id})


def select_leaf(conn: Connection, owner: str, conversation_id: str, message_id: int) -> None:
    """The path now ends at `message_id`; `Busy` while an answer is being written."""
    result = conn.execute(
        _SET_LEAF_IF_FREE,
        {"conversation": conversation_id, "owned_by": owner, "new_leaf": message_id},
    )
    if result.rowcount != 1:
        raise Busy()


def find_message(
    conn: Connection, owner: str, message_id: int, conversation_id: str | None = None
) -> Any:
    """The message's id, conversation, role and parent; `NotFound` when it is not the
    owner's (or not of `conversation_id`, when given)."""
    row = conn.execute(_MESSAGE_OF_OWNER, {"message": message_id, "owned_by": owner}).first()
    if row is None or (conversation_id is not None and row.conversation_id != conversation_id):
        raise NotFound(NO_SUCH_MESSAGE)
    return row


def path_rows(conn: Connection, ids: list[int]) -> list[Any]:
    """The whole rows of these messages, in id order (a path's order)."""
    if not ids:
        return []
    return list(conn.execute(_PATH_MESSAGES, {"ids": ids}).all())


def seen_above(conn: Connection, conversation_id: str, seed: int | None) -> list[Turn]:
    """What the model sees of the path that ends at `seed` (inclusive)."""
    return [turn for turn, _ in seen_with_files(conn, conversation_id, seed)]


def seen_with_files(
    conn: Connection, conversation_id: str, seed: int | None
) -> list[tuple[Turn, tuple[StoredFile, ...]]]:
    """`seen_above`, each turn with the files of its message (#11): their contents
    are in the file storage, read outside the transaction (`Files.attach`)."""
    if seed is None:
        return []
    rows = conn.execute(_ANCESTORS, {"seed": seed, "conversation": conversation_id}).all()
    attached = files.of_messages(conn, [row.id for row in rows if row.role == Role.USER.value])
    return [
        (Turn(role=Role(row.role), content=row.content), attached.get(row.id, ())) for row in rows
    ]


def history(conn: Connection, conversation_id: str, before_message_id: int) -> list[Turn]:
    """What the model sees when it answers as message `before_message_id`: the path
    above it. For an id that is no message of the conversation, the path that ends at
    its latest message below that id."""
    row = conn.execute(
        _PARENT_OF, {"message": before_message_id, "conversation": conversation_id}
    ).first()
    if row is not None:
        seed = row.parent_id
    else:
        seed = conn.scalar(
            _LATEST_BEFORE, {"conversation": conversation_id, "before": before_message_id}
        )
    return seen_above(conn, conversation_id, seed)
