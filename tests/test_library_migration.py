"""Migration 0007 (#12, #10) from 0006, with real rows, on SQLite and PostgreSQL:
existing conversations become unpinned, without instructions, titled by their first
message; the app renames, pins and lists them; the downgrade takes the columns away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from alembic import command
from sqlalchemy import insert, inspect
from sqlalchemy.engine import Connection

from hxchat.store.library import Changes, Library
from hxchat.store.migrate import alembic_config, schema_is_current, upgrade
from hxchat.store.sql import open_store
from hxchat.store.tables import conversations, messages
from tests.store_helpers import differences, on_connection

OLD = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)
NEW_COLUMNS = {"pinned", "title_source", "instructions"}


def rows_at_0006(connection: Connection) -> None:
    """Three conversations of two owners with a message each, as 0006 keeps them (only
    the columns it has are named)."""
    command.upgrade(alembic_config(connection), "0006")
    rows = [("c1", "alice", "Older one"), ("c2", "alice", "Newer one"), ("c3", "bob", "Bob's")]
    for number, (cid, owner, title) in enumerate(rows):
        when = OLD + timedelta(hours=number)
        connection.execute(
            insert(conversations).values(
                id=cid, owner=owner, title=title, created_at=when, updated_at=when
            )
        )
        message: dict[str, Any] = {
            "conversation_id": cid,
            "role": "user",
            "content": title.lower(),
            "status": "complete",
            "sources": "[]",
            "created_at": when,
            "updated_at": when,
        }
        connection.execute(insert(messages).values(**message))


def columns(connection: Connection) -> set[str]:
    return {c["name"] for c in inspect(connection).get_columns("conversations")}


async def test_upgrade_from_0006_keeps_the_conversations_and_the_library_works_on_them(
    database_url: str,
) -> None:
    await on_connection(database_url, rows_at_0006)
    assert not NEW_COLUMNS & await on_connection(database_url, columns)

    await upgrade(database_url)

    assert await schema_is_current(database_url)
    assert await on_connection(database_url, differences) == []
    store = await open_store(database_url)
    try:
        listed = await store.list_conversations("alice")
        assert [(c.id, c.title, c.pinned) for c in listed] == [
            ("c2", "Newer one", False),
            ("c1", "Older one", False),
        ]
        old = await store.get_conversation("alice", "c1")
        assert old is not None
        assert (old.instructions, old.title_source, old.pinned) == ("", "message", False)
        assert [m.content for m in old.messages] == ["older one"]

        library = Library(store)
        assert await library.change("alice", "c1", Changes(pinned=True, title="Pinned"))
        assert await library.change("alice", "c1", Changes(instructions="Be brief."))
        assert not await library.change("alice", "c3", Changes(title="Not hers"))
        listed = await store.list_conversations("alice")
        assert [(c.id, c.title, c.pinned) for c in listed] == [
            ("c1", "Pinned", True),
            ("c2", "Newer one", False),
        ]
        renamed = await store.get_conversation("alice", "c1")
        assert renamed is not None
        assert (renamed.instructions, renamed.title_source) == ("Be brief.", "user")
        bobs = await store.get_conversation("bob", "c3")
        assert bobs is not None and bobs.title == "Bob's"
        # A new turn in an old conversation reads its instructions for the model.
        started = await store.start_turn("alice", "c1", "and now?", "gen-1", "w", 60)
        assert started.instructions == "Be brief."
        assert not started.wants_title  # not its first message
    finally:
        await store.close()

    def downgrade_to_0006(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), "0006")

    await on_connection(database_url, downgrade_to_0006)
    assert not NEW_COLUMNS & await on_connection(database_url, columns)
    await upgrade(database_url)  # and back: what was renamed keeps its title
    store = await open_store(database_url)
    try:
        listed = await store.list_conversations("alice")
        assert [(c.id, c.title, c.pinned) for c in listed] == [
            ("c1", "Pinned", False),
            ("c2", "Newer one", False),
        ]
    finally:
        await store.close()
