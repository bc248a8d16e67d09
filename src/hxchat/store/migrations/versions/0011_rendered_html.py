"""A finished answer keeps its rendered HTML (#10).

Messages gain `rendered_html` (the answer's Markdown rendered and sanitised by hxchat's
renderer) and `rendered_by` (which renderer made it), so that showing a long
conversation, also right after a restart, does not render every answer again.

The answers written before are left without it (NULL): the first page that shows one
renders it and keeps it. The downgrade drops the columns (the HTML is made again from
`content` whenever it is missing, so nothing is lost).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("rendered_html", sa.Text(), nullable=True))
    op.add_column("messages", sa.Column("rendered_by", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("messages", "rendered_by")
    op.drop_column("messages", "rendered_html")
