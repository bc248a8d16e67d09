"""Checkpoints append pieces instead of rewriting the answer (issue #13).

A streaming answer's checkpoint used to rewrite `messages.content` with the whole
text so far, once a second: a long answer was written to the store many times over.
Now each checkpoint adds the text written since the previous one as a row of
`answer_pieces`, and the answer's end merges them into `content`.

Rows written before the upgrade need nothing: a streaming answer's `content` is the
start of its text, and pieces (none yet) follow it. The downgrade merges the pieces
of answers still streaming into their `content`, as the previous version keeps them.

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "answer_pieces",
        sa.Column("message_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("start", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", "start", name="pk_answer_pieces"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name="fk_answer_pieces_message_id_messages",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    # Written out here rather than imported: a migration must not change with the code.
    bind = op.get_bind()
    pieces = sa.table(
        "answer_pieces", sa.column("message_id"), sa.column("start"), sa.column("text")
    )
    messages = sa.table("messages", sa.column("id"), sa.column("content"))
    rows = bind.execute(
        sa.select(pieces.c.message_id, pieces.c.start, pieces.c.text).order_by(
            pieces.c.message_id, pieces.c.start
        )
    ).all()
    added: dict[int, list[tuple[int, str]]] = {}
    for row in rows:
        added.setdefault(row.message_id, []).append((row.start, row.text))
    for message_id, parts in added.items():
        text = bind.execute(
            sa.select(messages.c.content).where(messages.c.id == message_id)
        ).scalar_one()
        for start, piece in parts:
            if start + len(piece) > len(text):
                text = text[:start] + piece
        bind.execute(sa.update(messages).where(messages.c.id == message_id).values(content=text))
    op.drop_table("answer_pieces")
