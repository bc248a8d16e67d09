"""The database schema as SQLAlchemy Core tables.

The store's queries are written against these tables; Alembic's migrations (under
`migrations/versions`) are the schema's history and must produce exactly this.
Core rather than the ORM: the store's interesting operations are conditional
UPDATEs whose row count decides the answer (the per-conversation lock, the lease).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)

# Stable constraint names, so that later migrations can refer to them on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _owned_by(name: str, target: str) -> Column[Any]:
    """An indexed, required reference to the row that owns this one (an id of 32
    characters): the row goes when its owner does (ON DELETE CASCADE)."""
    return Column(
        name, String(32), ForeignKey(target, ondelete="CASCADE"), nullable=False, index=True
    )


def _message_key() -> Column[Any]:
    """`message_id` as (part of) the primary key of a row that belongs to one message
    and goes with it."""
    return Column(
        "message_id",
        Integer,
        ForeignKey("messages.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    )


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database.

    PostgreSQL keeps `timestamptz`; SQLite keeps text without an offset and returns
    naive values, which are UTC because only UTC is ever written.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        # SQLite compares these as text: one format, one zone, no offset suffix.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


conversations = Table(
    "conversations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", String(255), nullable=False, index=True),
    Column("title", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    # The per-conversation lock: set while a generation of it is streaming.
    Column("active_generation_id", String(64), nullable=True),
    # The end of the path the conversation shows (`store/tree.py`): its messages are
    # this one and its ancestors. None only while the conversation is empty.
    Column("current_leaf_id", Integer, nullable=True),
    # The library (#12): pinned ones are listed first; `title_source` says who wrote the
    # title (`store/library.py`): "message" (the first message, or "New chat"),
    # "pending" (the model is writing one), "model", "user" (renamed: never overwritten).
    Column("pinned", Boolean, nullable=False, server_default=false()),
    Column("title_source", String(16), nullable=False, server_default="message"),
    # Added to the system prompt of the conversation's answers (#10); "" for none.
    Column("instructions", Text, nullable=False, server_default=""),
    Index("ix_conversations_owner_updated_at", "owner", "updated_at"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _owned_by("conversation_id", "conversations.id"),
    # The message this one follows (None for a first message); messages with the same
    # parent are versions of one another (`store/tree.py`).
    Column("parent_id", Integer, nullable=True),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("sources", Text, nullable=False),  # a JSON list of {"title", "url"}
    Column("generation_id", String(64), nullable=True, unique=True),
    Column("error", Text, nullable=True),
    Column("search_suggestions", Text, nullable=True),
    Column("final_event_id", String(64), nullable=True),
    Column("worker_id", String(255), nullable=True),
    Column("lease_expires_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    # The model that wrote an answer (`openai:gpt-4o-mini`); None for a user's message
    # and for the answers written before hxchat recorded it.
    Column("model", String(255), nullable=True),
    # What a finished answer cost (None: not reported, or written before hxchat kept
    # it): its tokens as the provider reported them, and its times in milliseconds.
    Column("input_tokens", Integer, nullable=True),
    Column("output_tokens", Integer, nullable=True),
    Column("first_text_ms", Integer, nullable=True),
    Column("total_ms", Integer, nullable=True),
    # A finished answer's HTML as hxchat's renderer made it from `content`, sanitised,
    # and which renderer that was (`render.markdown.RENDERER`): a page shows it without
    # rendering (`store/rendered.py`). Only the server writes it; None until then.
    Column("rendered_html", Text, nullable=True),
    Column("rendered_by", String(64), nullable=True),
    Index("ix_messages_status_lease_expires_at", "status", "lease_expires_at"),
    # Ids only grow (a parent's id is below its children's), also after deletions.
    sqlite_autoincrement=True,
)

# The text a streaming answer's checkpoints added, one row per checkpoint: `start` is
# the offset (in characters) of `text` in the answer. The answer's text is its message's
# `content` followed by these pieces in `start` order (`store/pieces.py`); its end (or
# the sweeper) merges them into `content` and deletes them.
answer_pieces = Table(
    "answer_pieces",
    metadata,
    _message_key(),
    Column("start", Integer, primary_key=True, autoincrement=False),
    Column("text", Text, nullable=False),
)

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# -- accounts: people, their sign-ins and their API tokens ---------------------------
# A user's id is the `owner` of their conversations. Sessions and tokens are kept only
# as the SHA-256 of the random secret the browser or program holds.

users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("email", String(320), nullable=True),
    Column("password_hash", Text, nullable=True),  # argon2id; none for other sign-ins
    Column("auth", String(16), nullable=False),  # how they sign in: password, oidc, header
    Column("issuer", String(255), nullable=True),  # OpenID Connect: (issuer, subject)
    Column("subject", String(255), nullable=True),
    Column("admin", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=True),
    UniqueConstraint("issuer", "subject", name="uq_users_issuer_subject"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the cookie's token, hex
    _owned_by("user_id", "users.id"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),  # expiry counts from here
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    _owned_by("user_id", "users.id"),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_used_at", UtcDateTime(), nullable=True),
    Column("expires_at", UtcDateTime(), nullable=True),
)

# -- the library: share links and feedback (#12) ---------------------------------------
# A share is a snapshot: its messages are copies, so what the conversation says later
# never reaches the link. The link's token is kept only as its SHA-256, like sessions.

shares = Table(
    "shares",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the link's token, hex
    _owned_by("conversation_id", "conversations.id"),
    Column("title", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

shared_messages = Table(
    "shared_messages",
    metadata,
    Column(
        "share_id",
        String(64),
        ForeignKey("shares.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("position", Integer, primary_key=True, autoincrement=False),
    # The message this is a copy of: the files a shared message carries are those of
    # this message (no foreign key: the copy outlives nothing, the share goes with
    # its conversation).
    Column("message_id", Integer, nullable=False),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("sources", Text, nullable=False),  # a JSON list of {"title", "url"}
    Column("error", Text, nullable=True),
    Column("model", String(255), nullable=True),
)

# One row per rated answer: its rating ("up", "down", or None with only a comment).
feedback = Table(
    "feedback",
    metadata,
    _message_key(),
    Column("rating", String(8), nullable=True),
    Column("comment", Text, nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# -- attachments (#11): metadata here, contents in the file storage (`hxchat.files`) ---
# A file is one upload of one owner; its bytes are a content, kept once per owner and
# SHA-256 (two uploads of the same bytes share it). A message's files are its links, in
# order. A content with no file left is an orphan: it is deleted from the storage,
# then its row (`store/files.py`). Nothing of a file's bytes is kept in the database.

files = Table(
    "files",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", String(255), nullable=False),
    Column("name", String(255), nullable=False),  # the client's name, cleaned
    Column("media_type", String(100), nullable=False),  # found from the content
    Column("size", Integer, nullable=False),  # bytes as stored (after re-encoding)
    Column("sha256", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_files_owner_sha256", "owner", "sha256"),
    Index("ix_files_created_at", "created_at"),
)

file_contents = Table(
    "file_contents",
    metadata,
    Column("owner", String(255), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("media_type", String(100), nullable=False),  # a PDF also keeps its text
    Column("created_at", UtcDateTime(), nullable=False),
)

message_files = Table(
    "message_files",
    metadata,
    _message_key(),
    Column("position", Integer, primary_key=True, autoincrement=False),
    _owned_by("file_id", "files.id"),
)
