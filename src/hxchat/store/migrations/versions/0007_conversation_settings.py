"""Conversations gain what the library needs (#12, #10): pinned, who wrote the title,
and instructions.

- `pinned` (false for every existing conversation): pinned ones are listed first.
- `title_source`: who wrote the title, so that a title the user chose is never
  overwritten, and the page knows when the model is still writing one. Existing
  titles were made from the first message (or are "New chat"): `message`.
- `instructions` ("" for none): added to the system prompt of the conversation's
  answers.

The downgrade drops the three columns (a renamed title stays as the title).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "conversations",
        sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "conversations",
        sa.Column("title_source", sa.String(length=16), nullable=False, server_default="message"),
    )
    op.add_column(
        "conversations",
        sa.Column("instructions", sa.Text(), nullable=False, server_default=""),
    )


def downgrade() -> None:
    for column in ("instructions", "title_source", "pinned"):
        op.drop_column("conversations", column)
