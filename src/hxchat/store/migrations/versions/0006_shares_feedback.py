"""Share links and feedback (#12).

`shares` holds one row per shared link (the SHA-256 of its token, never the token) and
`shared_messages` the copies of the messages the conversation showed when it was
shared: a snapshot, so later messages never reach the link. `feedback` holds an
answer's rating and comment. All three go with their conversation or message (foreign
keys with ON DELETE CASCADE). Existing rows are untouched: nothing is shared or rated
yet. The downgrade drops the three tables.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shares",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("conversation_id", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_shares"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_shares_conversation_id_conversations",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_shares_conversation_id", "shares", ["conversation_id"])
    op.create_table(
        "shared_messages",
        sa.Column("share_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sources", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("model", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("share_id", "position", name="pk_shared_messages"),
        sa.ForeignKeyConstraint(
            ["share_id"],
            ["shares.id"],
            name="fk_shared_messages_share_id_shares",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "feedback",
        sa.Column("message_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rating", sa.String(8), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_feedback"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name="fk_feedback_message_id_messages",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("shared_messages")
    op.drop_index("ix_shares_conversation_id", table_name="shares")
    op.drop_table("shares")
