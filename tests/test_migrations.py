"""Alembic migrations on a real SQLite file, and on a fresh PostgreSQL database when
HXCHAT_TEST_POSTGRES_URL is set: upgrade, "is the schema current", and that the
migrations build exactly the tables the store is written against."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.engine import Connection

from hxchat.domain import MessageStatus, ModelChoice, Role, Source, Timing, Turn, Usage
from hxchat.errors import StoreUnavailable
from hxchat.store.base import Checkpoint
from hxchat.store.migrate import alembic_config, head_revision, schema_is_current, upgrade
from hxchat.store.search import in_metadata
from hxchat.store.sql import open_store
from hxchat.store.tables import conversations, messages
from tests.store_helpers import (
    differences,
    finish_answer,
    on_connection,
    stored_revision,
    upgrade_from,
)

TABLES = {
    "alembic_version",
    "answer_pieces",
    "conversations",
    "messages",
    "settings",
    "users",
    "sessions",
    "api_tokens",
    "shares",
    "shared_messages",
    "feedback",
    "files",
    "file_contents",
    "message_files",
}
ACCOUNT_TABLES = {"users", "sessions", "api_tokens"}  # from 0003 on
LIBRARY_TABLES = {"shares", "shared_messages", "feedback"}  # from 0006 on
FILE_TABLES = {"files", "file_contents", "message_files"}  # from 0009 on


def table_names(connection: Connection) -> set[str]:
    """The tables, without the search index's (`search_…`, see test_library_search)."""
    return {
        name for name in inspect(connection).get_table_names() if in_metadata(name, "table", None)
    }


def test_the_migrations_are_one_line_ending_at_the_expected_head() -> None:
    """Every migration script is on one line from the first to the newest, and the
    newest is the revision hxchat expects the database to be at."""
    scripts = ScriptDirectory.from_config(alembic_config())
    line = list(scripts.walk_revisions())  # newest first
    assert scripts.get_heads() == [head_revision()] == [line[0].revision]
    assert line[-1].down_revision is None
    files = [p for p in Path(scripts.versions).glob("*.py") if p.name != "__init__.py"]
    assert len(files) == len(line)


async def test_upgrade_builds_exactly_the_stores_tables(database_url: str) -> None:
    assert not await schema_is_current(database_url)  # an empty database
    assert await on_connection(database_url, table_names) == set()

    await upgrade(database_url)

    assert await schema_is_current(database_url)
    assert await on_connection(database_url, stored_revision) == head_revision()
    assert await on_connection(database_url, table_names) == TABLES
    # The migration and `tables.py` describe the same schema (indexes, keys, types).
    assert await on_connection(database_url, differences) == []


async def test_upgrade_again_changes_nothing_and_keeps_the_data(database_url: str) -> None:
    await upgrade(database_url)
    store = await open_store(database_url)
    try:
        conversation_id = await store.create_conversation("alice")
        await upgrade(database_url)
        assert await schema_is_current(database_url)
        assert await store.get_conversation("alice", conversation_id) is not None
    finally:
        await store.close()


async def test_concurrent_upgrades_both_succeed(database_url: str) -> None:
    await asyncio.gather(upgrade(database_url), upgrade(database_url))
    assert await schema_is_current(database_url)


async def test_a_database_at_another_revision_is_not_current(database_url: str) -> None:
    await upgrade(database_url)

    def stamp_elsewhere(connection: Connection) -> None:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))

    await on_connection(database_url, stamp_elsewhere)
    assert not await schema_is_current(database_url)


async def test_downgrade_removes_the_schema(database_url: str) -> None:
    await upgrade(database_url)

    def downgrade_to_base(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), "base")

    await on_connection(database_url, downgrade_to_base)
    assert await on_connection(database_url, table_names) == {"alembic_version"}
    assert not await schema_is_current(database_url)


async def test_upgrade_leaves_the_apps_logging_alone(database_url: str) -> None:
    app_logger = logging.getLogger("hxchat.test_migrations")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    await upgrade(database_url)
    assert not app_logger.disabled  # what logging.config.fileConfig would do
    assert root.handlers == handlers and root.level == level


async def test_an_unreachable_database_is_store_unavailable(tmp_path: Path) -> None:
    unreachable = "postgresql+asyncpg://hxuser:s3cret-pw@127.0.0.1:1/hxchat"
    with pytest.raises(StoreUnavailable) as caught:
        await upgrade(unreachable)
    assert "s3cret-pw" not in caught.value.detail
    with pytest.raises(StoreUnavailable):
        await schema_is_current(unreachable)
    with pytest.raises(StoreUnavailable):
        await upgrade(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'hxchat.db'}")


# -- 0002: checkpoints as pieces of text (issue #13) ---------------------------------------

OLD = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def rows_at_0001(connection: Connection) -> None:
    """A database of the previous version: a finished turn, and an answer still
    streaming whose checkpoints rewrote `content` (its worker is gone)."""
    command.upgrade(alembic_config(connection), "0001")
    connection.execute(
        insert(conversations),
        [
            {
                "id": "c1",
                "owner": "alice",
                "title": "Old",
                "created_at": OLD,
                "updated_at": OLD,
                "active_generation_id": "gen-old",
            }
        ],
    )
    common = {  # every row names every column (an executemany takes the first row's)
        "conversation_id": "c1",
        "sources": "[]",
        "generation_id": None,
        "worker_id": None,
        "lease_expires_at": None,
        "created_at": OLD,
        "updated_at": OLD,
    }
    connection.execute(
        insert(messages),
        [
            {**common, "role": "user", "content": "first", "status": "complete"},
            {
                **common,
                "role": "assistant",
                "content": "first answer",
                "status": "complete",
                "generation_id": "gen-done",
                "sources": '[{"title": "T", "url": "https://example.com/"}]',
            },
            {**common, "role": "user", "content": "second", "status": "complete"},
            {
                **common,
                "role": "assistant",
                "content": "half of an old ans",
                "status": "streaming",
                "generation_id": "gen-old",
                "worker_id": "old-worker",
                "lease_expires_at": OLD,
            },
        ],
    )


async def test_upgrade_from_0001_keeps_the_rows_and_the_app_works_on_them(
    database_url: str,
) -> None:
    await on_connection(database_url, rows_at_0001)
    assert not await schema_is_current(database_url)
    await upgrade(database_url)
    assert await schema_is_current(database_url)
    assert await on_connection(database_url, differences) == []

    store = await open_store(database_url)
    try:
        conversation = await store.get_conversation("alice", "c1")
        assert conversation is not None
        assert [(m.content, m.status.value) for m in conversation.messages] == [
            ("first", "complete"),
            ("first answer", "complete"),
            ("second", "complete"),
            ("half of an old ans", "streaming"),
        ]
        assert conversation.messages[1].sources == (Source("T", "https://example.com/"),)
        # The answer left streaming is swept with the text its checkpoints wrote.
        swept = await store.sweep_expired()
        assert [(g.id, g.status, g.content) for g in swept] == [
            ("gen-old", MessageStatus.INTERRUPTED, "half of an old ans")
        ]
        # A new turn checkpoints in pieces, and ends whole.
        started = await store.start_turn("alice", "c1", "third", "gen-new", "w", 60)
        message_id = started.assistant_message_id
        for start, piece in ((0, "new "), (4, "answer")):
            added = Checkpoint("gen-new", message_id, start, piece)
            assert not await store.checkpoint_many([added], "w", 60)
        running = await store.get_generation("gen-new", "alice")
        assert running is not None and running.content == "new answer"
        assert await finish_answer(store, "gen-new", "new answer.")
        assert [turn.content for turn in await store.history("c1", message_id + 1)] == [
            "first",
            "first answer",
            "second",
            "half of an old ans",
            "third",
            "new answer.",
        ]
    finally:
        await store.close()


async def test_downgrade_to_0001_merges_the_pieces_of_running_answers(database_url: str) -> None:
    await upgrade(database_url)
    store = await open_store(database_url)
    try:
        cid = await store.create_conversation("alice")
        started = await store.start_turn("alice", cid, "hi", "gen", "w", 60)
        for start, piece in ((0, "a running "), (10, "answer")):
            added = Checkpoint("gen", started.assistant_message_id, start, piece)
            assert not await store.checkpoint_many([added], "w", 60)
    finally:
        await store.close()

    def downgrade_to_0001(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), "0001")

    def contents(connection: Connection) -> list[tuple[str, str]]:
        query = select(messages.c.content, messages.c.status).order_by(messages.c.id)
        return [(row.content, row.status) for row in connection.execute(query)]

    await on_connection(database_url, downgrade_to_0001)
    assert await on_connection(database_url, table_names) == TABLES - {
        "answer_pieces",
        *ACCOUNT_TABLES,
        *LIBRARY_TABLES,
        *FILE_TABLES,
    }
    assert await on_connection(database_url, contents) == [
        ("hi", "complete"),
        ("a running answer", "streaming"),
    ]
    await upgrade(database_url)  # and back: the text stays in `content`
    store = await open_store(database_url)
    try:
        generation = await store.get_generation("gen")
        assert generation is not None and generation.content == "a running answer"
    finally:
        await store.close()


async def test_accounts_arrive_over_a_schema_with_conversations(database_url: str) -> None:
    """0003 (accounts) upgrades a database that already holds conversations, messages
    and the signing key: they stay as they were, the new tables start empty, and the
    downgrade takes only the new tables away."""

    def at(revision: str) -> Callable[[Connection], None]:
        def move(connection: Connection) -> None:
            if (stored_revision_or_none(connection) or "") > revision:  # "0001" < "0004"
                command.downgrade(alembic_config(connection), revision)
            else:
                command.upgrade(alembic_config(connection), revision)

        return move

    def fill(connection: Connection) -> None:
        now = datetime(2025, 1, 1, 10, tzinfo=UTC)
        connection.execute(
            text(
                "INSERT INTO conversations (id, owner, title, created_at, updated_at) "
                "VALUES ('c1', 'anon-owner', 'Hello', :now, :now)"
            ),
            {"now": now},
        )
        connection.execute(
            text(
                "INSERT INTO messages (conversation_id, role, content, status, sources, "
                "created_at, updated_at) VALUES ('c1', 'user', 'Hi', 'complete', '[]', :now, :now)"
            ),
            {"now": now},
        )
        connection.execute(text("INSERT INTO settings (key, value) VALUES ('secret_key', 'k')"))

    def contents(connection: Connection) -> tuple[Any, ...]:
        return (
            connection.execute(text("SELECT id, owner, title FROM conversations")).all(),
            connection.execute(text("SELECT conversation_id, content FROM messages")).all(),
            connection.execute(text("SELECT key, value FROM settings")).all(),
        )

    def accounts_rows(connection: Connection) -> int:
        return sum(
            int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in ("users", "sessions", "api_tokens")
        )

    await on_connection(database_url, at("0002"))
    await on_connection(database_url, fill)
    before = await on_connection(database_url, contents)
    await upgrade(database_url)
    assert await on_connection(database_url, stored_revision) == head_revision()
    assert await on_connection(database_url, contents) == before
    assert await on_connection(database_url, accounts_rows) == 0

    store = await open_store(database_url)
    try:
        conversation = await store.get_conversation("anon-owner", "c1")
        assert conversation is not None and conversation.messages[0].content == "Hi"
    finally:
        await store.close()

    await on_connection(database_url, at("0002"))
    assert await on_connection(database_url, contents) == before
    assert (
        await on_connection(database_url, table_names)
        == TABLES - ACCOUNT_TABLES - LIBRARY_TABLES - FILE_TABLES
    )


def stored_revision_or_none(connection: Connection) -> str | None:
    if "alembic_version" not in table_names(connection):
        return None
    return stored_revision(connection)


# -- 0004: messages as a tree, the path a conversation shows (issue #10) ------------------


def rows_at_0003(connection: Connection) -> None:
    """A database of the previous version: two conversations whose messages' ids
    interleave (a finished chat of three turns whose last answer failed, and a chat
    whose answer is still streaming with a checkpoint in pieces), an empty one, and
    an account."""
    command.upgrade(alembic_config(connection), "0003")
    connection.execute(
        text(
            "INSERT INTO users (id, name, auth, admin, disabled, created_at) "
            "VALUES ('u1', 'alice', 'password', false, false, :now)"
        ),
        {"now": OLD},
    )
    for cid, active in (("c1", None), ("c2", "gen-running"), ("c3", None)):
        connection.execute(
            text(
                "INSERT INTO conversations (id, owner, title, created_at, updated_at, "
                "active_generation_id) VALUES (:cid, 'u1', :cid, :now, :now, :active)"
            ),
            {"cid": cid, "now": OLD, "active": active},
        )
    rows = [
        ("c1", "user", "one", "complete", None),
        ("c2", "user", "other", "complete", None),
        ("c1", "assistant", "answer one", "complete", "gen-1"),
        ("c1", "user", "two", "complete", None),
        ("c2", "assistant", "half", "streaming", "gen-running"),
        ("c1", "assistant", "answer two", "complete", "gen-2"),
        ("c1", "user", "three", "complete", None),
        ("c1", "assistant", "", "error", "gen-3"),
    ]
    for cid, role, content, status, gid in rows:
        connection.execute(
            text(
                "INSERT INTO messages (conversation_id, role, content, status, sources, "
                "generation_id, worker_id, lease_expires_at, created_at, updated_at) "
                "VALUES (:cid, :role, :content, :status, '[]', :gid, :worker, :lease, :now, :now)"
            ),
            {
                "cid": cid,
                "role": role,
                "content": content,
                "status": status,
                "gid": gid,
                "worker": "w" if status == "streaming" else None,
                "lease": OLD if status == "streaming" else None,
                "now": OLD,
            },
        )
    running = connection.execute(
        text("SELECT id FROM messages WHERE generation_id = 'gen-running'")
    ).scalar_one()
    connection.execute(
        text("INSERT INTO answer_pieces (message_id, start, text) VALUES (:m, 4, ' an answer')"),
        {"m": running},
    )


def tree_of(connection: Connection) -> dict[str, Any]:
    """Each conversation's messages as (content, parent's content), and its leaf's."""
    found: dict[str, Any] = {}
    by_id = {
        row.id: row
        for row in connection.execute(
            text("SELECT id, conversation_id, parent_id, content FROM messages ORDER BY id")
        )
    }
    for row in by_id.values():
        parent = by_id[row.parent_id].content if row.parent_id is not None else None
        found.setdefault(row.conversation_id, []).append((row.content, parent))
    for row in connection.execute(text("SELECT id, current_leaf_id FROM conversations")):
        leaf = by_id[row.current_leaf_id].content if row.current_leaf_id is not None else None
        found[f"{row.id} leaf"] = leaf
    return found


async def test_upgrade_from_0003_makes_each_conversation_a_chain_and_the_app_works_on_it(
    database_url: str,
) -> None:
    await upgrade_from(database_url, rows_at_0003)
    assert await on_connection(database_url, tree_of) == {
        "c1": [
            ("one", None),
            ("answer one", "one"),
            ("two", "answer one"),
            ("answer two", "two"),
            ("three", "answer two"),
            ("", "three"),
        ],
        "c2": [("other", None), ("half", "other")],
        "c1 leaf": "",
        "c2 leaf": "half",
        "c3 leaf": None,
    }

    store = await open_store(database_url)
    try:
        c1 = await store.get_conversation("u1", "c1")
        assert c1 is not None
        assert [m.content for m in c1.messages] == [
            "one",
            "answer one",
            "two",
            "answer two",
            "three",
            "",
        ]
        assert all(m.versions == (m.id,) for m in c1.messages)
        assert [m.parent_id for m in c1.messages][1:] == [m.id for m in c1.messages][:-1]
        c2 = await store.get_conversation("u1", "c2")
        assert c2 is not None and [m.content for m in c2.messages] == ["other", "half an answer"]
        c3 = await store.get_conversation("u1", "c3")
        assert c3 is not None and c3.messages == ()

        # The failed answer is retried as a new version; the second question edited.
        failed = c1.messages[-1]
        retried = await store.start_retry("u1", "c1", "gen-4", "w", 60)
        assert [t.content for t in retried.history] == [
            "one",
            "answer one",
            "two",
            "answer two",
            "three",
        ]
        await finish_answer(store, "gen-4", "answer three")
        c1 = await store.get_conversation("u1", "c1")
        assert c1 is not None and c1.messages[-1].versions == (
            failed.id,
            retried.assistant_message_id,
        )
        edited = await store.start_edit("u1", c1.messages[2].id, "two, again", "gen-5", "w", 60)
        assert [t.content for t in edited.history] == ["one", "answer one", "two, again"]
        c1 = await store.get_conversation("u1", "c1")
        assert c1 is not None
        assert [m.content for m in c1.messages] == ["one", "answer one", "two, again", ""]
        # The running answer of c2 is swept as before, with its pieces.
        swept = await store.sweep_expired()
        assert [(g.id, g.content) for g in swept] == [("gen-running", "half an answer")]
        # A new turn in the empty conversation starts its tree.
        started = await store.start_turn("u1", "c3", "first", "gen-6", "w", 60)
        assert started.history == (Turn(Role.USER, "first"),)
    finally:
        await store.close()

    def downgrade_to_0003(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), "0003")

    def contents(connection: Connection) -> list[tuple[str, str]]:
        rows = connection.execute(
            text("SELECT conversation_id, content FROM messages ORDER BY id")
        ).all()
        return [(row.conversation_id, row.content) for row in rows]

    await on_connection(database_url, downgrade_to_0003)
    # Only each conversation's path is left, in the order the previous version shows.
    assert await on_connection(database_url, contents) == [
        ("c1", "one"),
        ("c2", "other"),
        ("c1", "answer one"),
        ("c2", "half an answer"),
        ("c1", "two, again"),
        ("c1", ""),  # still being written: the previous version goes on with it
        ("c3", "first"),
        ("c3", ""),
    ]
    await upgrade(database_url)  # and back: the paths are chains again
    found = await on_connection(database_url, tree_of)
    assert found["c1"] == [
        ("one", None),
        ("answer one", "one"),
        ("two, again", "answer one"),
        ("", "two, again"),
    ]
    assert found["c1 leaf"] == ""


# -- 0005: each answer records its model (issue #10) --------------------------------------


async def test_upgrade_from_0004_leaves_old_answers_without_a_model_and_records_new_ones(
    database_url: str,
) -> None:
    """Answers written before 0005 have no model (NULL: which one wrote them is not
    known); the app reads them, and a new answer records the model chosen for it."""

    def rows_at_0004(connection: Connection) -> None:
        rows_at_0003(connection)
        command.upgrade(alembic_config(connection), "0004")

    await upgrade_from(database_url, rows_at_0004)

    store = await open_store(database_url)
    try:
        c1 = await store.get_conversation("u1", "c1")
        assert c1 is not None and len(c1.messages) == 6
        assert {m.model for m in c1.messages} == {None}
        choice = ModelChoice(None, "echo", frozenset({"echo", "openai:b"}))
        retried = await store.start_retry("u1", "c1", "gen-4", "w", 60, choice)
        assert retried.model == "echo"  # the old answer has none: the default
        await finish_answer(store, "gen-4", "answer three")
        asked = ModelChoice("openai:b", "echo", frozenset({"echo", "openai:b"}))
        started = await store.start_turn("u1", "c1", "four", "gen-5", "w", 60, asked)
        generation = await store.get_generation("gen-5", "u1")
        assert generation is not None and generation.model == "openai:b"
        await finish_answer(store, "gen-5", "answer four")
        goes_on = await store.start_turn("u1", "c1", "five", "gen-6", "w", 60, choice)
        assert goes_on.model == "openai:b"  # the conversation's model
        c1 = await store.get_conversation("u1", "c1")
        assert c1 is not None
        assert [m.model for m in c1.messages if m.role is Role.ASSISTANT] == [
            None,
            None,
            "echo",
            "openai:b",
            "openai:b",
        ]
        assert started.assistant_message_id in {m.id for m in c1.messages}
    finally:
        await store.close()

    def downgrade_to_0004(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), "0004")

    def columns(connection: Connection) -> set[str]:
        return {c["name"] for c in inspect(connection).get_columns("messages")}

    await on_connection(database_url, downgrade_to_0004)
    assert "model" not in await on_connection(database_url, columns)
    await upgrade(database_url)
    assert "model" in await on_connection(database_url, columns)


# -- 0008: each answer records its tokens and times (issue #10) ----------------------------


async def test_upgrade_from_0007_leaves_old_answers_without_usage_and_records_new_ones(
    database_url: str,
) -> None:
    """Answers written before 0008 have no tokens nor times (NULL: nobody counted); the
    app reads them as unknown, and a new answer records what it is given."""

    def rows_at_0007(connection: Connection) -> None:
        rows_at_0003(connection)
        command.upgrade(alembic_config(connection), "0007")
        connection.execute(text("UPDATE messages SET model = 'echo' WHERE role = 'assistant'"))

    await upgrade_from(database_url, rows_at_0007)

    store = await open_store(database_url)
    try:
        c1 = await store.get_conversation("u1", "c1")
        assert c1 is not None and len(c1.messages) == 6
        answers = [m for m in c1.messages if m.role is Role.ASSISTANT]
        assert {(m.model, m.usage, m.timing) for m in answers} == {("echo", Usage(), None)}
        assert {(m.usage, m.timing) for m in c1.messages if m.role is Role.USER} == {(None, None)}
        await store.start_retry("u1", "c1", "gen-4", "w", 60)
        running = await store.get_generation("gen-4", "u1")
        assert running is not None and running.timing is None
        assert await finish_answer(
            store,
            "gen-4",
            "answer three",
            usage=Usage(input_tokens=12, output_tokens=None),
            timing=Timing(first_text_ms=340, total_ms=2150),
        )
        finished = await store.get_generation("gen-4", "u1")
        assert finished is not None
        assert (finished.usage, finished.timing) == (Usage(12, None), Timing(340, 2150))
        c1 = await store.get_conversation("u1", "c1")
        assert c1 is not None
        assert (c1.messages[-1].usage, c1.messages[-1].timing) == (
            Usage(12, None),
            Timing(340, 2150),
        )
        # The interrupted answer of c2, swept, has no times: its generation never ended.
        swept = await store.sweep_expired()
        assert [(g.id, g.usage, g.timing) for g in swept] == [("gen-running", Usage(), None)]
    finally:
        await store.close()

    def downgrade_to_0007(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), "0007")

    def columns(connection: Connection) -> set[str]:
        return {c["name"] for c in inspect(connection).get_columns("messages")}

    def contents(connection: Connection) -> list[str]:
        rows = connection.execute(text("SELECT content FROM messages ORDER BY id")).all()
        return [row.content for row in rows]

    kept = await on_connection(database_url, contents)
    await on_connection(database_url, downgrade_to_0007)
    added = {"input_tokens", "output_tokens", "first_text_ms", "total_ms"}
    assert not added & await on_connection(database_url, columns)
    assert await on_connection(database_url, contents) == kept
    await upgrade(database_url)
    assert added <= await on_connection(database_url, columns)
