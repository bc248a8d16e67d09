"""Each answer records the model that wrote it (#10).

Messages gain `model`, the id of the model an answer was written by
(`openai:gpt-4o-mini`), so that several models can be offered at once and a
conversation goes on with the model its last answer used.

The answers written before are left without one (NULL): which model wrote them is not
known (`HXCHAT_MODEL` may have changed since), and a made-up value would be shown as a
fact. They read as "model": null; a conversation whose last answer has none goes on
with the default model. The downgrade drops the column.

Revision ID: 0005
Revises: 0004
Create Date: 2025-07-22 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("model", sa.String(length=255), nullable=True))


def downgrade() -> None:
    op.drop_column("messages", "model")
