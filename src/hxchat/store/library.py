"""A conversation's settings: its title, whether it is pinned, its instructions (#12, #10).

Like `queries`, each function here is one whole transaction on the connection it is
given; `Library` runs them on a `SqlStore` (`SqlStore.run`). Every request's change is
scoped to the owner; the title the model writes (`titles.py`) is scoped instead to the
title still being "pending", so it never overwrites a title the user chose meanwhile.

Who wrote a title is kept in `conversations.title_source`:

- `message`: the core's title, the first message shortened (or "New chat" before it);
- `pending`: that title, while the model writes a better one after the first answer;
- `model`: the model's;
- `user`: the user renamed it; nothing else ever changes it again.

None of these changes `updated_at`: renaming or pinning is not activity, and the list
stays in the order of the conversations' last messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.engine import Connection

from hxchat.store.tables import conversations

if TYPE_CHECKING:
    from hxchat.store.sql import SqlStore

MESSAGE = "message"
PENDING = "pending"
MODEL = "model"
USER = "user"

_OWNED = and_(
    conversations.c.id == bindparam("conversation"),
    conversations.c.owner == bindparam("owned_by"),
)
_PENDING = and_(
    conversations.c.id == bindparam("conversation"),
    conversations.c.title_source == PENDING,
)
_MODEL_TITLE = (
    update(conversations).where(_PENDING).values(title=bindparam("new_title"), title_source=MODEL)
)
_KEEP_TITLE = update(conversations).where(_PENDING).values(title_source=MESSAGE)
_TITLE_OF = select(conversations.c.title, conversations.c.title_source).where(_OWNED)


@dataclass(frozen=True, slots=True)
class Changes:
    """What a `PATCH` changes; None leaves a setting as it is."""

    title: str | None = None
    pinned: bool | None = None
    instructions: str | None = None

    def values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if self.title is not None:
            values |= {"title": self.title, "title_source": USER}
        if self.pinned is not None:
            values["pinned"] = self.pinned
        if self.instructions is not None:
            values["instructions"] = self.instructions
        return values


@dataclass(frozen=True, slots=True)
class TitleState:
    title: str
    source: str

    @property
    def pending(self) -> bool:
        return self.source == PENDING


def change(conn: Connection, owner: str, conversation_id: str, changes: Changes) -> bool:
    """Apply `changes` to the owner's conversation; False when there is none."""
    values = changes.values()
    params = {"conversation": conversation_id, "owned_by": owner}
    if not values:  # nothing to change: only whether it is there
        return conn.execute(_TITLE_OF, params).first() is not None
    return conn.execute(update(conversations).where(_OWNED).values(**values), params).rowcount == 1


def write_model_title(conn: Connection, conversation_id: str, title: str) -> bool:
    """The model's title, unless the user renamed the conversation meanwhile (or it
    is gone); True when it was written."""
    result = conn.execute(_MODEL_TITLE, {"conversation": conversation_id, "new_title": title})
    return result.rowcount == 1


def keep_title(conn: Connection, conversation_id: str) -> None:
    """No title came from the model: the first message's stays, no longer pending."""
    conn.execute(_KEEP_TITLE, {"conversation": conversation_id})


def title_state(conn: Connection, owner: str, conversation_id: str) -> TitleState | None:
    row = conn.execute(_TITLE_OF, {"conversation": conversation_id, "owned_by": owner}).first()
    return None if row is None else TitleState(row.title, row.title_source)


class Library:
    """The statements above, each as one transaction of a `SqlStore`."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    async def change(self, owner: str, conversation_id: str, changes: Changes) -> bool:
        return await self.store.run(True, change, owner, conversation_id, changes)

    async def write_model_title(self, conversation_id: str, title: str) -> bool:
        return await self.store.run(True, write_model_title, conversation_id, title)

    async def keep_title(self, conversation_id: str) -> None:
        await self.store.run(True, keep_title, conversation_id)

    async def title_state(self, owner: str, conversation_id: str) -> TitleState | None:
        return await self.store.run(False, title_state, owner, conversation_id)
