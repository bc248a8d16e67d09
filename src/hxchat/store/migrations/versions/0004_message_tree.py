"""Messages become a tree: versions of a message, and the path a conversation shows (#10).

Every message gains `parent_id` (the message it follows; none for a first message),
so that an edited question or a regenerated answer can sit beside the earlier one as
a version of it. A conversation gains `current_leaf_id`, the end of the path it
shows: that message and its ancestors.

The upgrade turns every conversation into a chain: each message's parent is the
message before it (by id, as the previous version showed them), and the leaf is the
last one. The downgrade keeps only the path each conversation shows (the previous
version knows no other messages) and drops both columns.

Revision ID: 0004
Revises: 0003
Create Date: 2025-07-15 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("parent_id", sa.Integer(), nullable=True))
    op.add_column("conversations", sa.Column("current_leaf_id", sa.Integer(), nullable=True))
    # Written out as SQL rather than with the code's tables: a migration must not change
    # with the code. Both statements are correlated subqueries on both databases.
    op.execute(
        "UPDATE messages SET parent_id = ("
        " SELECT MAX(earlier.id) FROM messages AS earlier"
        " WHERE earlier.conversation_id = messages.conversation_id"
        " AND earlier.id < messages.id)"
    )
    op.execute(
        "UPDATE conversations SET current_leaf_id = ("
        " SELECT MAX(m.id) FROM messages AS m WHERE m.conversation_id = conversations.id)"
    )


def downgrade() -> None:
    # The path of every conversation: its leaf and the leaf's ancestors.
    on_a_path = (
        "WITH RECURSIVE path(id) AS ("
        " SELECT current_leaf_id FROM conversations WHERE current_leaf_id IS NOT NULL"
        " UNION ALL"
        " SELECT m.parent_id FROM messages AS m JOIN path ON m.id = path.id"
        " WHERE m.parent_id IS NOT NULL)"
        " SELECT id FROM path"
    )
    # Pieces first: SQLite enforces no foreign keys here, so no cascade does it.
    op.execute(
        "DELETE FROM answer_pieces WHERE message_id IN ("
        f" SELECT id FROM messages WHERE id NOT IN ({on_a_path}))"
    )
    op.execute(f"DELETE FROM messages WHERE id NOT IN ({on_a_path})")
    op.drop_column("conversations", "current_leaf_id")
    op.drop_column("messages", "parent_id")
