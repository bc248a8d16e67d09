"""Migration 0010 (#12) on a real SQLite file and a fresh PostgreSQL database: from
0005 with real rows, the index is built for what the conversations show (versions
not shown and answers still being written left out), then kept current by the app;
the downgrade takes the index away and the upgrade builds it again."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from hxchat.store.migrate import alembic_config, head_revision, upgrade
from hxchat.store.sql import open_store
from tests.store_helpers import answered_turn, on_connection, stored_revision

OLD = datetime(2025, 8, 1, 9, 0, tzinfo=UTC)


def rows_at_0005(connection: Connection) -> None:
    """Alice's chat whose first question was edited (the old branch kept, not shown),
    her chat whose answer is still streaming, an empty one; Bob's chat."""
    command.upgrade(alembic_config(connection), "0005")
    for cid, owner, title in (
        ("c1", "alice", "Tapir questions"),
        ("c2", "alice", "Streaming"),
        ("c3", "alice", "New chat"),
        ("c4", "bob", "Tapir of Bob"),
    ):
        connection.execute(
            text(
                "INSERT INTO conversations (id, owner, title, created_at, updated_at)"
                " VALUES (:cid, :owner, :title, :now, :now)"
            ),
            {"cid": cid, "owner": owner, "title": title, "now": OLD},
        )
    # (conversation, parent's index in this list or None, role, content, status)
    rows = [
        ("c1", None, "user", "old tapir question", "complete"),  # 0: the old version
        ("c1", 0, "assistant", "old okapi answer", "complete"),  # 1
        ("c1", None, "user", "new tapir question", "complete"),  # 2: the edit, shown
        ("c1", 2, "assistant", "new capybara answer", "complete"),  # 3
        ("c2", None, "user", "tell me about ocelots", "complete"),  # 4
        ("c2", 4, "assistant", "ocelots are half", "streaming"),  # 5: being written
        ("c4", None, "user", "bob's tapir", "complete"),  # 6
    ]
    made: list[int] = []
    for cid, parent, role, content, status in rows:
        made.append(
            connection.execute(
                text(
                    "INSERT INTO messages (conversation_id, parent_id, role, content, status,"
                    " sources, generation_id, worker_id, lease_expires_at, created_at,"
                    " updated_at) VALUES (:cid, :parent, :role, :content, :status, '[]',"
                    " :gid, :worker, :lease, :now, :now) RETURNING id"
                ),
                {
                    "cid": cid,
                    "parent": None if parent is None else made[parent],
                    "role": role,
                    "content": content,
                    "status": status,
                    "gid": f"gen-{len(made)}" if role == "assistant" else None,
                    "worker": "gone" if status == "streaming" else None,
                    "lease": OLD if status == "streaming" else None,
                    "now": OLD,
                },
            ).scalar_one()
        )
    for cid, leaf in (("c1", made[3]), ("c2", made[5]), ("c4", made[6])):
        connection.execute(
            text("UPDATE conversations SET current_leaf_id = :leaf WHERE id = :cid"),
            {"leaf": leaf, "cid": cid},
        )


def search_tables(connection: Connection) -> set[str]:
    return {n for n in inspect(connection).get_table_names() if n.startswith("search_")}


async def test_upgrade_from_0005_indexes_what_conversations_show(database_url: str) -> None:
    await on_connection(database_url, rows_at_0005)
    await upgrade(database_url)
    revision = await on_connection(database_url, stored_revision)
    assert revision == head_revision()  # through 0010, whatever came after it

    store = await open_store(database_url)
    try:

        async def found(owner: str, query: str) -> list[tuple[str, str]]:
            hits = await store.search(owner, query)
            return sorted((hit.conversation_id, hit.snippet) for hit in hits)

        assert await found("alice", "capybara") == [("c1", "new capybara answer")]
        assert await found("alice", "okapi") == []  # a version that is not shown
        # "tapir": the question shown, and the title (pointing at that question).
        assert await found("alice", "tapir") == [("c1", "new tapir question")]
        assert await found("bob", "tapir") == [("c4", "bob's tapir")]
        assert await found("alice", "ocelots") == [("c2", "tell me about ocelots")]
        assert await found("alice", "half") == []  # still being written
        assert await found("alice", "new chat") == []  # the empty conversation

        # The app keeps the index: the streaming answer is swept with its text, found.
        swept = await store.sweep_expired()
        assert [g.content for g in swept] == ["ocelots are half"]
        assert await found("alice", "half") == [("c2", "ocelots are half")]
        await answered_turn(store, "alice", "c3", "a serval", "servals jump", "gen-new")
        assert await found("alice", "serval") == [("c3", "a serval"), ("c3", "servals jump")]
        assert await store.delete_conversation("alice", "c1") == ""
        assert await found("alice", "tapir") == []
    finally:
        await store.close()

    def downgrade_to_0009(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), "0009")

    await on_connection(database_url, downgrade_to_0009)
    assert await on_connection(database_url, search_tables) == set()
    await upgrade(database_url)  # and back: built again from the rows
    assert await on_connection(database_url, search_tables)
    store = await open_store(database_url)
    try:
        hits = await store.search("alice", "servals")
        assert [hit.snippet for hit in hits] == ["servals jump"]
        assert await store.search("bob", "servals") == []
    finally:
        await store.close()
