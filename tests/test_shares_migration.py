"""Migration 0006 (#12): shares and feedback arrive over a database of revision 0005
that holds real conversations, on SQLite and PostgreSQL; the app shares and rates them;
the downgrade takes only the new tables away."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from hxchat.auth.secrets import digest
from hxchat.store.feedback import FeedbackStore
from hxchat.store.migrate import alembic_config, upgrade
from hxchat.store.shares import ShareStore
from hxchat.store.sql import open_store
from tests.store_helpers import differences, on_connection

OLD = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
NEW_TABLES = {"shares", "shared_messages", "feedback"}


def rows_at_0005(connection: Connection) -> None:
    """Revision 0005 with an account's conversation: a question, an answer with a
    source and a model, and a second question whose answer failed."""
    command.upgrade(alembic_config(connection), "0005")
    connection.execute(
        text(
            "INSERT INTO users (id, name, auth, admin, disabled, created_at) "
            "VALUES ('u1', 'alice', 'password', false, false, :now)"
        ),
        {"now": OLD},
    )
    connection.execute(
        text(
            "INSERT INTO conversations (id, owner, title, created_at, updated_at) "
            "VALUES ('c1', 'u1', 'Alembic', :now, :now)"
        ),
        {"now": OLD},
    )
    parent = None
    for role, content, status, model, sources in (
        ("user", "How do I migrate?", "complete", None, "[]"),
        (
            "assistant",
            "Use **Alembic**.",
            "complete",
            "openai:b",
            '[{"title": "A", "url": "https://a.example/"}]',
        ),
        ("user", "And back?", "complete", None, "[]"),
        ("assistant", "", "error", "openai:b", "[]"),
    ):
        parent = connection.execute(
            text(
                "INSERT INTO messages (conversation_id, parent_id, role, content, status, "
                "sources, model, error, created_at, updated_at) VALUES ('c1', :parent, :role, "
                ":content, :status, :sources, :model, :error, :now, :now) RETURNING id"
            ),
            {
                "parent": parent,
                "role": role,
                "content": content,
                "status": status,
                "sources": sources,
                "model": model,
                "error": "The model failed." if status == "error" else None,
                "now": OLD,
            },
        ).scalar_one()
    connection.execute(text("UPDATE conversations SET current_leaf_id = :leaf"), {"leaf": parent})


def snapshot_of_rows(connection: Connection) -> tuple[Any, ...]:
    return (
        connection.execute(text("SELECT id, owner, title FROM conversations")).all(),
        connection.execute(
            text("SELECT id, parent_id, role, content, status, model FROM messages ORDER BY id")
        ).all(),
    )


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def downgrade_to_0005(connection: Connection) -> None:
    command.downgrade(alembic_config(connection), "0005")


async def test_upgrade_from_0005_keeps_the_rows_and_shares_and_rates_them(
    database_url: str,
) -> None:
    await on_connection(database_url, rows_at_0005)
    before = await on_connection(database_url, snapshot_of_rows)
    await upgrade(database_url)
    assert await on_connection(database_url, differences) == []
    assert await on_connection(database_url, snapshot_of_rows) == before

    store = await open_store(database_url)
    try:
        conversation = await store.get_conversation("u1", "c1")
        assert conversation is not None
        assert [m.feedback for m in conversation.messages] == [None] * 4
        answer = conversation.messages[1]
        feedback, shares = FeedbackStore(store), ShareStore(store)
        await feedback.rate("u1", answer.id, "up", "Just right.")
        await shares.create("u1", "c1", digest("old-rows-link"))
        shown = await shares.snapshot(digest("old-rows-link"))
        assert shown is not None and shown.title == "Alembic"
        assert [(m.role.value, m.content, m.status.value) for m in shown.messages] == [
            ("user", "How do I migrate?", "complete"),
            ("assistant", "Use **Alembic**.", "complete"),
            ("user", "And back?", "complete"),
            ("assistant", "", "error"),
        ]
        assert shown.messages[1].sources[0].url == "https://a.example/"
        assert shown.messages[3].error == "The model failed."
        assert await feedback.counts() == [("openai:b", "up", 1)]
        rated = await store.get_conversation("u1", "c1")
        assert rated is not None and rated.messages[1].feedback is not None
        assert rated.messages[1].feedback.as_json() == {"rating": "up", "comment": "Just right."}
    finally:
        await store.close()

    await on_connection(database_url, downgrade_to_0005)
    assert not await on_connection(database_url, table_names) & NEW_TABLES
    assert await on_connection(database_url, snapshot_of_rows) == before
    await upgrade(database_url)  # and up again: empty, working tables
    store = await open_store(database_url)
    try:
        assert await ShareStore(store).snapshot(digest("old-rows-link")) is None
        assert await FeedbackStore(store).counts() == []
    finally:
        await store.close()
