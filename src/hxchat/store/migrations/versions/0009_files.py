"""Attachments (#11): files, their contents and the messages that use them.

`files` is one upload of one owner (its cleaned name, the type found from its bytes,
its size as stored, the SHA-256 of its content); `file_contents` is each content kept
once per owner in the file storage (`HXCHAT_FILES_URL`), so that two uploads of the
same bytes share it and it is deleted when its last file goes; `message_files` links a
user's message to its files, in order. The bytes are never in the database.

Existing conversations are untouched: their messages simply have no files. The
downgrade drops the three tables (the contents in the storage stay where they are).

It follows 0008 (each answer's usage), the head of main when it was written;
re-chain it after any migration that lands before it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_files"),
    )
    op.create_index("ix_files_owner_sha256", "files", ["owner", "sha256"])
    op.create_index("ix_files_created_at", "files", ["created_at"])
    op.create_table(
        "file_contents",
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner", "sha256", name="pk_file_contents"),
    )
    op.create_table(
        "message_files",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name="fk_message_files_message_id_messages",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["files.id"],
            name="fk_message_files_file_id_files",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", "position", name="pk_message_files"),
    )
    op.create_index("ix_message_files_file_id", "message_files", ["file_id"])


def downgrade() -> None:
    op.drop_table("message_files")
    op.drop_table("file_contents")
    op.drop_table("files")
