"""Feedback on answers (#12): a rating, up or down, and an optional comment.

One row per rated answer, which goes with its message (ON DELETE CASCADE). The
conversation's owner alone rates its answers: another owner's message is as absent
as one that does not exist (`NotFound`), a question is no answer (`InvalidMessage`),
and an answer still being written has nothing to rate yet (`Busy`).

Like `queries`, each function is one whole transaction (or a part of one) on the
connection it is given; `FeedbackStore` runs them on a `SqlStore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Insert, bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from hxchat.domain import MessageStatus, Role
from hxchat.errors import Busy, InvalidMessage
from hxchat.store import tree
from hxchat.store.base import Feedback
from hxchat.store.tables import feedback, messages, utcnow

if TYPE_CHECKING:
    from hxchat.store.sql import SqlStore

RATINGS = ("up", "down")
COMMENT_CHARS = 2_000  # a comment is a remark, not a document
STILL_WRITTEN = "This answer is still being written; rate it once it has ended."

_OF = select(feedback).where(feedback.c.message_id.in_(bindparam("ids", expanding=True)))
_STATUS = select(messages.c.status).where(messages.c.id == bindparam("message"))
_COMMENT = select(feedback.c.comment).where(feedback.c.message_id == bindparam("message"))
_DELETE = delete(feedback).where(feedback.c.message_id == bindparam("message"))
_COUNTS = (
    select(messages.c.model, feedback.c.rating, func.count())
    .select_from(feedback.join(messages, messages.c.id == feedback.c.message_id))
    .where(feedback.c.rating.is_not(None))
    .group_by(messages.c.model, feedback.c.rating)
)


def of(conn: Connection, message_ids: Sequence[int]) -> dict[int, Feedback]:
    """The feedback of these answers, by message id (the unrated ones are left out)."""
    if not message_ids:
        return {}
    rows = conn.execute(_OF, {"ids": list(message_ids)})
    return {row.message_id: Feedback(row.rating, row.comment) for row in rows}


def rate(
    conn: Connection,
    owner: str,
    message_id: int,
    rating: str | None,
    comment: str | None,
    keep_comment: bool,
    conversation_id: str | None = None,
) -> Feedback | None:
    """Set the answer's rating and comment (the comment it has, with `keep_comment`);
    with neither left, the answer is unrated. Returns what it has now. `NotFound`
    unless it is the owner's (and of `conversation_id`, when given)."""
    row = tree.find_message(conn, owner, message_id, conversation_id)
    if row.role != Role.ASSISTANT.value:
        raise InvalidMessage("Only an answer can be rated.")
    if conn.scalar(_STATUS, {"message": message_id}) == MessageStatus.STREAMING.value:
        raise Busy(STILL_WRITTEN)
    if keep_comment:
        comment = conn.scalar(_COMMENT, {"message": message_id})
    if rating is None and not comment:
        conn.execute(_DELETE, {"message": message_id})
        return None
    values = {
        "message_id": message_id,
        "rating": rating,
        "comment": comment or None,
        "updated_at": utcnow(),
    }
    upsert: Insert
    if conn.dialect.name == "postgresql":
        pg = pg_insert(feedback).values(values)
        upsert = pg.on_conflict_do_update(index_elements=["message_id"], set_=values)
    else:
        lite = sqlite_insert(feedback).values(values)
        upsert = lite.on_conflict_do_update(index_elements=["message_id"], set_=values)
    conn.execute(upsert)
    return Feedback(rating, comment or None)


def counts(conn: Connection) -> list[tuple[str | None, str, int]]:
    """(model, rating, how many answers) over every owner, for `/metrics`."""
    return [(row[0], row[1], int(row[2])) for row in conn.execute(_COUNTS)]


class FeedbackStore:
    """The transactions above on a `SqlStore`; each method is one transaction."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    async def rate(
        self,
        owner: str,
        message_id: int,
        rating: str | None,
        comment: str | None = None,
        *,
        keep_comment: bool = False,
        conversation_id: str | None = None,
    ) -> Feedback | None:
        return await self._store.run(
            True, rate, owner, message_id, rating, comment, keep_comment, conversation_id
        )

    async def counts(self) -> list[tuple[str | None, str, int]]:
        return await self._store.run(False, counts)
