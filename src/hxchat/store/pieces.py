"""A streaming answer's text in the store: its `content`, then its checkpoints' pieces.

A checkpoint used to rewrite `messages.content` with the whole text so far, so an
answer of n characters checkpointed k times reached the store as about n * k / 2
characters. Now each checkpoint adds only the text written since the previous one,
as a row of `answer_pieces` (`message_id`, `start`, `text`), and the answer's end
replaces `content` by its whole text and deletes the pieces, in one transaction (the
sweeper merges them into `content` when it marks an answer `interrupted`). What
reaches the store per answer is then its text about twice (once in pieces, once at
its end) plus the leases' fixed cost, whatever its length.

`start` is the answer's offset (in characters) where a piece begins; it makes a
repeated checkpoint harmless. The runner sends each checkpoint from the end of the
last one the store confirmed, so a checkpoint that failed, or whose commit
succeeded but whose reply was lost, is sent again from the same `start` with more
text: at one `start` the longer text wins (the answer only grows, so the longer one
is the later), and joining skips what a piece already covered.

Every reader of a streaming message's text goes through `join` (`leases.
select_generation`, `queries.get_conversation`, `leases.sweep`). The model's history
reads only ended answers (`queries.history`), whose pieces are merged already.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Insert, Integer, Text, bindparam, cast, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from hxchat.store.tables import answer_pieces, messages

_PIECES_OF = (
    select(answer_pieces.c.message_id, answer_pieces.c.start, answer_pieces.c.text)
    .where(answer_pieces.c.message_id.in_(bindparam("message_ids", expanding=True)))
    .order_by(answer_pieces.c.message_id, answer_pieces.c.start)
)
_DELETE_PIECES = delete(answer_pieces).where(
    answer_pieces.c.message_id.in_(bindparam("message_ids", expanding=True))
)


def add_statement(held: Any) -> dict[str, Insert]:
    """The INSERT of one piece, per dialect, only for the message `held` selects (the
    lease condition): binds `piece_start` and `piece_text`. At a `start` that already
    has a piece, the longer text stays."""
    rows = select(
        messages.c.id,
        cast(bindparam("piece_start"), Integer),
        cast(bindparam("piece_text"), Text),
    ).where(held)
    columns = [answer_pieces.c.message_id, answer_pieces.c.start, answer_pieces.c.text]
    statements: dict[str, Insert] = {}
    for name, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert)):
        statement = insert(answer_pieces).from_select(columns, rows)
        statements[name] = statement.on_conflict_do_update(
            index_elements=[answer_pieces.c.message_id, answer_pieces.c.start],
            set_={"text": statement.excluded.text},
            where=func.length(statement.excluded.text) > func.length(answer_pieces.c.text),
        )
    return statements


def join(content: str, pieces: Iterable[tuple[int, str]]) -> str:
    """The text of an answer: `content`, then the (start, text) pieces in `start`
    order, each from its offset (a piece that an earlier one covers adds nothing)."""
    text = content
    for start, piece in pieces:
        if start + len(piece) > len(text):
            text = text[:start] + piece
    return text


def texts(conn: Connection, contents: dict[int, str]) -> dict[int, str]:
    """The whole text of the messages of `contents` (message id -> stored content)
    whose checkpoints added pieces; the others are left out."""
    if not contents:
        return {}
    found: dict[int, list[tuple[int, str]]] = {}
    for row in conn.execute(_PIECES_OF, {"message_ids": list(contents)}):
        found.setdefault(row.message_id, []).append((row.start, row.text))
    return {message_id: join(contents[message_id], added) for message_id, added in found.items()}


def forget(conn: Connection, message_ids: Sequence[int]) -> None:
    """Delete the pieces of these messages (their text is in `content` now)."""
    if message_ids:
        conn.execute(_DELETE_PIECES, {"message_ids": list(message_ids)})
