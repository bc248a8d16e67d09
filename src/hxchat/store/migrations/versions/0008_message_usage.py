"""Each answer records what it cost: its tokens and its times (#10).

Messages gain `input_tokens` and `output_tokens` (as the model's provider reported
them) and `first_text_ms` and `total_ms` (from the start of the answer to its first
text and to its end, as its generation measured them).

The answers written before are left without them (NULL): nobody counted, and a
made-up figure would be shown as a fact. They read as `"usage": {"input_tokens": null,
"output_tokens": null}` and `"timing": null`. The downgrade drops the columns.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("input_tokens", "output_tokens", "first_text_ms", "total_ms")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("messages", sa.Column(name, sa.Integer(), nullable=True))


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column("messages", name)
