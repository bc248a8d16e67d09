"""The SQL store on a real SQLite file, and on a fresh PostgreSQL database when
HXCHAT_TEST_POSTGRES_URL is set: the same suite on both."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from hxchat.domain import MessageStatus, Role, Source, Turn
from hxchat.errors import Busy, NotFound, NothingToRetry, SchemaOutOfDate, StoreUnavailable
from hxchat.store.base import Checkpoint, TurnStarted
from hxchat.store.engine import make_engine
from hxchat.store.migrate import upgrade
from hxchat.store.records import DEFAULT_TITLE, make_title
from hxchat.store.sql import SqlStore, open_store
from hxchat.store.tables import utcnow
from tests.helpers import fresh_postgres_database, require_postgres

LEASE = 60.0
EXPIRED = -1.0  # a lease that ran out a second ago


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    await upgrade(database_url)
    store = await open_store(database_url)
    try:
        yield store
    finally:
        await store.close()


async def turn(store: SqlStore, owner: str, conversation_id: str, content: str) -> TurnStarted:
    return await store.start_turn(
        owner, conversation_id, content, uuid.uuid4().hex, "worker-1", LEASE
    )


async def finish(
    store: SqlStore,
    generation_id: str,
    content: str,
    status: MessageStatus = MessageStatus.COMPLETE,
    worker_id: str | None = "worker-1",
    sources: tuple[Source, ...] = (),
) -> bool:
    return await store.finish(
        generation_id,
        content=content,
        status=status,
        sources=sources,
        error="The model failed." if status is MessageStatus.ERROR else None,
        search_suggestions=None,
        final_event_id="7",
        worker_id=worker_id,
    )


async def checkpoint(
    store: SqlStore,
    gid: str,
    content: str,
    sources: list[Source] | None,
    worker: str,
    lease: float,
    start: int = 0,
) -> bool:
    """One answer's checkpoint, as the runner makes them (the text from `start`, the
    sources if they changed): True while `worker` holds it."""
    generation = await store.get_generation(gid)
    message_id = -1 if generation is None else generation.message_id
    found = None if sources is None else tuple(sources)
    added = Checkpoint(gid, message_id, start, content, found)
    return not await store.checkpoint_many([added], worker, lease)


# -- titles (no database) --------------------------------------------------------------


def test_title_keeps_a_short_message_on_one_line() -> None:
    assert make_title("  What is\n\tHTMX?  ") == "What is HTMX?"


def test_title_cuts_a_long_message_at_a_word_boundary() -> None:
    title = make_title("word " * 40)
    assert title.endswith("…")
    assert len(title) <= 60
    assert title == "word " * 11 + "word…"  # 12 words fill 59 characters


def test_title_cuts_a_single_overlong_word() -> None:
    title = make_title("x" * 500)
    assert title == "x" * 59 + "…"


def test_title_of_a_blank_message_is_the_default() -> None:
    assert make_title(" \n ") == DEFAULT_TITLE


@given(st.text(alphabet="ab1 \t\n_*`[]()#>-+.,!?é\u00a0\u2003\x85", max_size=80))
def test_title_marks_are_those_of_the_plain_definition(content: str) -> None:
    """The regexes are written for speed (a branch starts with a plain character);
    they leave out exactly what the plain definition below does."""
    line = re.compile(r"(?m)^[ \t]{0,3}(?:#{1,6}|>|[-*+]|\d+[.)])[ \t]+")
    inline = re.compile(r"\*\*|(?<!\S)__|__(?=[\s.,;:!?]|$)|`+|\]\([^)]*\)|(?<!\w)\[")
    plain = re.sub(r"\s+", " ", inline.sub("", line.sub("", content))).strip()
    assert make_title(content, limit=1_000) == (plain or DEFAULT_TITLE)  # no cut: 80 chars


# -- conversations ----------------------------------------------------------------------


async def test_title_comes_from_the_first_message_only(store: SqlStore) -> None:
    cid = await store.create_conversation("alice")
    first = await store.get_conversation("alice", cid)
    assert first is not None and first.title == DEFAULT_TITLE
    started = await turn(store, "alice", cid, "How do   I stream\nServer-Sent Events " * 5)
    await finish(store, started.generation_id, "Like this.")
    await turn(store, "alice", cid, "And something else entirely")
    conversation = await store.get_conversation("alice", cid)
    assert conversation is not None
    assert conversation.title.startswith("How do I stream Server-Sent Events How do")
    assert conversation.title.endswith("…") and len(conversation.title) <= 60


async def test_foreign_conversations_are_invisible(store: SqlStore) -> None:
    cid = await store.create_conversation("alice")
    started = await turn(store, "alice", cid, "secret question")
    assert await store.get_conversation("mallory", cid) is None
    assert await store.list_conversations("mallory") == []
    assert await store.get_generation(started.generation_id, "mallory") is None
    assert await store.delete_conversation("mallory", cid) is None
    with pytest.raises(NotFound):
        await turn(store, "mallory", cid, "hi")
    with pytest.raises(NotFound):
        await store.start_retry("mallory", cid, uuid.uuid4().hex, "worker-1", LEASE)
    # ...and nothing of it changed for its owner.
    conversation = await store.get_conversation("alice", cid)
    assert conversation is not None and len(conversation.messages) == 2
    owned = await store.get_generation(started.generation_id, "alice")
    internal = await store.get_generation(started.generation_id)
    assert owned is not None and internal == owned and owned.owner == "alice"


async def test_unknown_ids_are_not_found(store: SqlStore) -> None:
    missing = uuid.uuid4().hex
    assert await store.get_conversation("alice", missing) is None
    assert await store.delete_conversation("alice", missing) is None
    assert await store.get_generation(missing) is None
    with pytest.raises(NotFound):
        await turn(store, "alice", missing, "hi")


async def test_list_shows_last_activity_first(store: SqlStore) -> None:
    first = await store.create_conversation("alice")
    second = await store.create_conversation("alice")
    third = await store.create_conversation("alice")
    await store.create_conversation("bob")
    listed = [c.id for c in await store.list_conversations("alice")]
    assert listed == [third, second, first]

    started = await turn(store, "alice", first, "back to the first one")
    assert (await store.list_conversations("alice"))[0].id == first
    await turn(store, "alice", second, "now the second")
    assert (await store.list_conversations("alice"))[0].id == second
    await finish(store, started.generation_id, "answered")  # an answer is activity too
    summaries = await store.list_conversations("alice")
    assert [c.id for c in summaries] == [first, second, third]
    assert summaries[0].title == "back to the first one"
    assert [c.id for c in await store.list_conversations("alice", limit=2)] == [first, second]


async def test_timestamps_are_aware_utc(store: SqlStore) -> None:
    before = utcnow() - timedelta(seconds=5)
    cid = await store.create_conversation("alice")
    await turn(store, "alice", cid, "hello")
    conversation = await store.get_conversation("alice", cid)
    assert conversation is not None
    stamps = [conversation.created_at, conversation.updated_at]
    stamps += [m.created_at for m in conversation.messages if m.created_at is not None]
    assert len(stamps) == 4
    for stamp in stamps:
        assert stamp.utcoffset() == timedelta(0) and stamp.tzinfo is UTC
        assert before < stamp < utcnow() + timedelta(seconds=5)


async def test_a_turn_stores_both_messages_and_the_final_answer(store: SqlStore) -> None:
    cid = await store.create_conversation("alice")
    started = await turn(store, "alice", cid, "Find me a source")
    assert started.user_message_id is not None
    assert started.user_message_id < started.assistant_message_id
    conversation = await store.get_conversation("alice", cid)
    assert conversation is not None
    user, assistant = conversation.messages
    assert (user.role, user.content, user.status) == (
        Role.USER,
        "Find me a source",
        MessageStatus.COMPLETE,
    )
    assert (assistant.role, assistant.status, assistant.content) == (
        Role.ASSISTANT,
        MessageStatus.STREAMING,
        "",
    )
    assert assistant.id == started.assistant_message_id
    assert assistant.generation_id == started.generation_id

    sources = (Source("Example", "https://example.com/a"), Source("Ünïcode", "https://x.org"))
    assert await finish(store, started.generation_id, "Here **it** is.", sources=sources)
    generation = await store.get_generation(started.generation_id, "alice")
    assert generation is not None
    assert generation.status is MessageStatus.COMPLETE
    assert (generation.content, generation.sources) == ("Here **it** is.", sources)
    assert generation.final_event_id == "7"
    assert generation.message_id == started.assistant_message_id
    conversation = await store.get_conversation("alice", cid)
    assert conversation is not None and conversation.messages[1].sources == sources


# -- the conversation lock --------------------------------------------------------------


async def test_two_concurrent_turns_never_both_start(store: SqlStore) -> None:
    conversations = [await store.create_conversation("alice") for _ in range(4)]
    for cid in conversations:
        results = await asyncio.gather(
            turn(store, "alice", cid, "one"),
            turn(store, "alice", cid, "two"),
            return_exceptions=True,
        )
        started = [r for r in results if isinstance(r, TurnStarted)]
        busy = [r for r in results if isinstance(r, Busy)]
        assert (len(started), len(busy)) == (1, 1), results
        conversation = await store.get_conversation("alice", cid)
        assert conversation is not None and len(conversation.messages) == 2


async def test_busy_until_the_answer_is_finished(store: SqlStore) -> None:
    cid = await store.create_conversation("alice")
    started = await turn(store, "alice", cid, "first")
    with pytest.raises(Busy):
        await turn(store, "alice", cid, "too early")
    with pytest.raises(Busy):
        await store.start_retry("alice", cid, uuid.uuid4().hex, "worker-1", LEASE)
    assert await finish(store, started.generation_id, "done")
    second = await turn(store, "alice", cid, "second")
    assert second.generation_id != started.generation_id


async def test_retry_keeps_the_last_answer_as_a_version(store: SqlStore) -> None:
    cid = await store.create_conversation("alice")
    first = await turn(store, "alice", cid, "first question")
    await finish(store, first.generation_id, "first answer")
    second = await turn(store, "alice", cid, "second question")
    await finish(store, second.generation_id, "", MessageStatus.ERROR)

    retried = await store.start_retry("alice", cid, "retry-gen", "worker-2", LEASE)
    assert retried.user_message_id is None
    assert retried.history == (
        Turn(Role.USER, "first question"),
        Turn(Role.ASSISTANT, "first answer"),
        Turn(Role.USER, "second question"),
    )
    assert retried.assistant_message_id > second.assistant_message_id  # ids are never reused
    conversation = await store.get_conversation("alice", cid)
    assert conversation is not None
    assert [(m.role, m.content, m.status) for m in conversation.messages] == [
        (Role.USER, "first question", MessageStatus.COMPLETE),
        (Role.ASSISTANT, "first answer", MessageStatus.COMPLETE),
        (Role.USER, "second question", MessageStatus.COMPLETE),
        (Role.ASSISTANT, "", MessageStatus.STREAMING),
    ]
    # The failed answer is kept, as the older version of the new one.
    assert await store.get_generation(second.generation_id) is not None
    assert conversation.messages[-1].versions == (
        second.assistant_message_id,
        retried.assistant_message_id,
    )
    assert await checkpoint(store, "retry-gen", "again", [], "worker-2", LEASE)
    with pytest.raises(Busy):
        await turn(store, "alice", cid, "while retrying")


async def test_retry_of_a_completed_answer_shows_the_new_one(store: SqlStore) -> None:
    cid = await store.create_conversation("alice")
    first = await turn(store, "alice", cid, "question")
    await finish(store, first.generation_id, "a fine answer")
    await store.start_retry("alice", cid, "retry-gen", "worker-1", LEASE)
    conversation = await store.get_conversation("alice", cid)
    assert conversation is not None
    assert [m.generation_id for m in conversation.messages] == [None, "retry-gen"]
    assert len(conversation.messages[1].versions) == 2


async def test_nothing_to_retry_without_a_user_message(store: SqlStore) -> None:
    cid = await store.create_conversation("alice")
    with pytest.raises(NothingToRetry):
        await store.start_retry("alice", cid, uuid.uuid4().hex, "worker-1", LEASE)
    # The refused retry left the conversation free.
    await turn(store, "alice", cid, "now a real message")


# -- what the model sees ----------------------------------------------------------------


async def test_history_leaves_out_errors_and_later_messages(store: SqlStore) -> None:
    cid = await store.create_conversation("alice")
    statuses = [
        (MessageStatus.COMPLETE, "complete answer"),
        (MessageStatus.ERROR, "half an answer that failed"),
        (MessageStatus.STOPPED, "stopped answer"),
        (MessageStatus.STOPPED, ""),  # stopped before the first word
    ]
    for number, (status, content) in enumerate(statuses):
        started = await turn(store, "alice", cid, f"question {number}")
        await finish(store, started.generation_id, content, status)
    interrupted = await turn(store, "alice", cid, "question 4")
    await checkpoint(store, interrupted.generation_id, "cut short", [], "worker-1", EXPIRED)
    assert len(await store.sweep_expired()) == 1
    current = await turn(store, "alice", cid, "question 5")

    history = await store.history(cid, current.assistant_message_id)
    assert history == [
        Turn(Role.USER, "question 0"),
        Turn(Role.ASSISTANT, "complete answer"),
        Turn(Role.USER, "question 1"),
        Turn(Role.USER, "question 2"),
        Turn(Role.ASSISTANT, "stopped answer"),
        Turn(Role.USER, "question 3"),
        Turn(Role.USER, "question 4"),
        Turn(Role.ASSISTANT, "cut short"),
        Turn(Role.USER, "question 5"),
    ]
    assert list(current.history) == history  # read as the turn was stored
    assert current.user_message_id is not None
    assert await store.history(cid, current.user_message_id) == history[:-1]
    assert await store.history(uuid.uuid4().hex, current.assistant_message_id) == []


# -- leases -----------------------------------------------------------------------------


async def test_checkpoint_renews_only_the_holders_lease(store: SqlStore) -> None:
    cid = await store.create_conversation("alice")
    started = await turn(store, "alice", cid, "hi")
    gid = started.generation_id
    sources = [Source("Docs", "https://example.com/docs")]
    assert await checkpoint(store, gid, "partial", sources, "worker-1", LEASE)
    assert not await checkpoint(store, gid, "hijacked", [], "worker-2", LEASE)
    generation = await store.get_generation(gid)
    assert generation is not None
    assert (generation.content, generation.sources) == ("partial", tuple(sources))
    assert generation.status is MessageStatus.STREAMING

    assert not await finish(store, gid, "not mine", worker_id="worker-2")
    assert await finish(store, gid, "partial and more", MessageStatus.STOPPED)
    assert not await checkpoint(store, gid, "after the end", [], "worker-1", LEASE)
    assert not await finish(store, gid, "twice")
    assert not await finish(store, gid, "sweeper", MessageStatus.ERROR, worker_id=None)
    generation = await store.get_generation(gid)
    assert generation is not None
    assert (generation.status, generation.content) == (MessageStatus.STOPPED, "partial and more")


async def test_finish_without_a_worker_ends_a_streaming_answer(store: SqlStore) -> None:
    cid = await store.create_conversation("alice")
    started = await turn(store, "alice", cid, "hi")
    assert await finish(store, started.generation_id, "", MessageStatus.ERROR, worker_id=None)
    generation = await store.get_generation(started.generation_id)
    assert generation is not None and generation.status is MessageStatus.ERROR
    assert generation.error == "The model failed."
    await turn(store, "alice", cid, "the conversation is free again")


async def test_finish_refuses_a_streaming_status(store: SqlStore) -> None:
    cid = await store.create_conversation("alice")
    started = await turn(store, "alice", cid, "hi")
    with pytest.raises(ValueError, match="final status"):
        await finish(store, started.generation_id, "", MessageStatus.STREAMING)


async def test_sweep_takes_only_expired_leases(store: SqlStore) -> None:
    live_cid = await store.create_conversation("alice")
    dead_cid = await store.create_conversation("bob")
    live = await turn(store, "alice", live_cid, "still running")
    dead = await turn(store, "bob", dead_cid, "worker crashed")
    assert await checkpoint(store, dead.generation_id, "half an", [], "worker-1", EXPIRED)

    swept = await store.sweep_expired()
    assert [(g.id, g.owner, g.conversation_id) for g in swept] == [
        (dead.generation_id, "bob", dead_cid)
    ]
    assert (swept[0].status, swept[0].content) == (MessageStatus.INTERRUPTED, "half an")
    assert swept[0].message_id == dead.assistant_message_id
    assert await store.sweep_expired() == []

    # The live one is untouched and still its worker's.
    generation = await store.get_generation(live.generation_id)
    assert generation is not None and generation.status is MessageStatus.STREAMING
    assert await checkpoint(store, live.generation_id, "more", [], "worker-1", LEASE)
    with pytest.raises(Busy):
        await turn(store, "alice", live_cid, "too early")
    # The swept one is no longer its worker's, and its conversation is free.
    assert not await checkpoint(store, dead.generation_id, "late", [], "worker-1", LEASE)
    assert not await finish(store, dead.generation_id, "late")
    stored = await store.get_generation(dead.generation_id)
    assert stored is not None
    assert (stored.status, stored.content) == (MessageStatus.INTERRUPTED, "half an")
    await turn(store, "bob", dead_cid, "try again")


async def test_concurrent_sweepers_each_take_an_answer_once(store: SqlStore) -> None:
    for number in range(3):
        cid = await store.create_conversation("alice")
        await store.start_turn("alice", cid, f"q{number}", f"gen-{number}", "dead", EXPIRED)
    results = await asyncio.gather(*(store.sweep_expired() for _ in range(3)))
    taken = sorted(g.id for result in results for g in result)
    assert taken == ["gen-0", "gen-1", "gen-2"]


async def test_sweep_including_live_leases_takes_every_streaming_answer(store: SqlStore) -> None:
    cid = await store.create_conversation("alice")
    started = await turn(store, "alice", cid, "left by the previous run")
    assert await store.sweep_expired() == []
    swept = await store.sweep_expired(include_live=True)
    assert [g.id for g in swept] == [started.generation_id]


# -- deletion ---------------------------------------------------------------------------


async def test_delete_returns_the_running_generation_and_cascades(store: SqlStore) -> None:
    cid = await store.create_conversation("alice")
    started = await turn(store, "alice", cid, "hi")
    assert await store.delete_conversation("alice", cid) == started.generation_id
    assert await store.get_conversation("alice", cid) is None
    assert await store.get_generation(started.generation_id) is None
    assert not await checkpoint(store, started.generation_id, "late", [], "worker-1", LEASE)
    assert not await finish(store, started.generation_id, "late")
    assert await store.history(cid, started.assistant_message_id + 1) == []
    assert await store.delete_conversation("alice", cid) is None


async def test_delete_of_an_idle_conversation_returns_empty(store: SqlStore) -> None:
    cid = await store.create_conversation("alice")
    started = await turn(store, "alice", cid, "hi")
    await finish(store, started.generation_id, "hello")
    assert await store.delete_conversation("alice", cid) == ""
    assert await store.list_conversations("alice") == []


# -- the signing key --------------------------------------------------------------------


async def test_two_stores_racing_agree_on_one_secret_key(database_url: str) -> None:
    await upgrade(database_url)
    first, second = await open_store(database_url), await open_store(database_url)
    try:
        keys = await asyncio.gather(first.secret_key("key-a"), second.secret_key("key-b"))
        assert keys[0] == keys[1] and keys[0] in ("key-a", "key-b")
        assert await second.secret_key("key-c") == keys[0]
    finally:
        await first.close()
        await second.close()


# -- an unreachable database ------------------------------------------------------------


async def test_a_database_without_the_schema_says_to_upgrade(database_url: str) -> None:
    store = await open_store(database_url)  # no `upgrade` before
    try:
        with pytest.raises(SchemaOutOfDate, match="hxchat db upgrade"):
            await store.list_conversations("alice")
    finally:
        await store.close()


async def test_unreachable_postgres_is_store_unavailable_without_credentials() -> None:
    url = "postgresql+asyncpg://hxuser:s3cret-pw@127.0.0.1:1/hxchat"
    with pytest.raises(StoreUnavailable) as caught:
        await open_store(url)
    detail = caught.value.detail
    assert "127.0.0.1:1" in detail and "connection refused" in detail
    assert "s3cret-pw" not in detail and "hxuser" not in detail

    store = SqlStore(url)
    try:
        with pytest.raises(StoreUnavailable):
            await store.list_conversations("alice")
        with pytest.raises(StoreUnavailable):
            await store.ping()
    finally:
        await store.close()


async def test_sqlite_in_a_missing_directory_is_store_unavailable(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'hxchat.db'}"
    with pytest.raises(StoreUnavailable) as caught:
        await open_store(url)
    assert f"the directory {tmp_path / 'no' / 'such' / 'dir'} does not exist" in caught.value.detail


@pytest.mark.postgres
async def test_unknown_postgres_database_is_store_unavailable() -> None:
    url = make_url(require_postgres()).set(database=f"missing_{uuid.uuid4().hex}")
    with pytest.raises(StoreUnavailable, match="does not exist"):
        await open_store(url.render_as_string(hide_password=False))


@pytest.mark.postgres
async def test_the_store_recovers_after_postgres_drops_its_connections() -> None:
    admin_url = require_postgres()
    async with fresh_postgres_database(admin_url) as url:
        await upgrade(url)
        store = await open_store(url)
        try:
            cid = await store.create_conversation("alice")
            admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
            try:
                async with admin.connect() as conn:  # what a server restart does to a pool
                    ended = await conn.scalar(
                        text(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = :name AND pid <> pg_backend_pid()"
                        ),
                        {"name": make_url(url).database},
                    )
            finally:
                await admin.dispose()
            assert ended >= 1
            assert [c.id for c in await store.list_conversations("alice")] == [cid]
        finally:
            await store.close()


async def test_checkpoint_many_saves_all_and_names_the_lost(store: SqlStore) -> None:
    """One transaction a second for all of a worker's answers (issue #3's 350 streams)."""
    owner = "owner-many"
    ids = []
    for i in range(3):
        cid = await store.create_conversation(owner)
        started = await store.start_turn(owner, cid, f"q{i}", f"gen-{i}", "worker-a", 30)
        ids.append(started.assistant_message_id)
    await store.finish(
        "gen-2",
        content="done",
        status=MessageStatus.COMPLETE,
        sources=[],
        error=None,
        search_suggestions=None,
        final_event_id=None,
        worker_id="worker-a",
    )
    lost = await store.checkpoint_many(
        [
            Checkpoint("gen-0", ids[0], 0, "zero"),
            Checkpoint("gen-1", ids[1], 0, "one"),
            Checkpoint("gen-2", ids[2], 0, "late"),
        ],
        "worker-a",
        30,
    )
    assert lost == {"gen-2"}
    texts = {}
    for i in range(3):
        generation = await store.get_generation(f"gen-{i}", owner)
        assert generation is not None
        texts[i] = generation.content
    assert texts == {0: "zero", 1: "one", 2: "done"}
    assert await store.checkpoint_many([], "worker-a", 30) == set()


async def test_a_sweeper_spares_its_own_late_leases(store: SqlStore) -> None:
    """A worker whose event loop fell behind must not interrupt its own live answers."""
    owner = "owner-late"
    mine, theirs = await store.create_conversation(owner), await store.create_conversation(owner)
    await store.start_turn(owner, mine, "q", "gen-mine", "worker-a", EXPIRED)
    await store.start_turn(owner, theirs, "q", "gen-theirs", "worker-b", EXPIRED)
    swept = await store.sweep_expired(spare_worker="worker-a")
    assert [g.id for g in swept] == ["gen-theirs"]
    still = await store.get_generation("gen-mine", owner)
    assert still is not None and still.status is MessageStatus.STREAMING
    assert [g.id for g in await store.sweep_expired()] == ["gen-mine"]


async def test_checkpoint_many_names_a_deleted_or_foreign_answer_lost(store: SqlStore) -> None:
    owner = "owner-gone"
    kept, deleted = await store.create_conversation(owner), await store.create_conversation(owner)
    other = await store.create_conversation(owner)
    started = [
        await store.start_turn(owner, cid, "q", gid, worker, LEASE)
        for cid, gid, worker in (
            (kept, "gen-kept", "worker-a"),
            (deleted, "gen-deleted", "worker-a"),
            (other, "gen-other", "worker-b"),
        )
    ]
    assert await store.delete_conversation(owner, deleted) == "gen-deleted"
    checkpoints = [
        Checkpoint(s.generation_id, s.assistant_message_id, 0, "text", (Source("t", "u"),))
        for s in started
    ]
    lost = await store.checkpoint_many(checkpoints, "worker-a", LEASE)
    assert lost == {"gen-deleted", "gen-other"}
    kept_now = await store.get_generation("gen-kept", owner)
    assert kept_now is not None and kept_now.content == "text"
    assert kept_now.sources == (Source("t", "u"),)
    other_now = await store.get_generation("gen-other", owner)
    assert other_now is not None and other_now.content == ""


# -- checkpoints as pieces of text (issue #13) --------------------------------------------


async def pieces_stored(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(text("SELECT count(*) FROM answer_pieces")) or 0)
    finally:
        await engine.dispose()


async def test_checkpoints_add_only_new_text_and_every_reader_sees_it_whole(
    store: SqlStore, database_url: str
) -> None:
    cid = await store.create_conversation("alice")
    started = await turn(store, "alice", cid, "hi")
    gid = started.generation_id
    sources = [Source("Docs", "https://example.com/docs")]
    assert await checkpoint(store, gid, "Hello ", sources, "worker-1", LEASE)
    assert await checkpoint(store, gid, "wör", None, "worker-1", LEASE, start=6)
    assert await checkpoint(store, gid, "", None, "worker-1", LEASE, start=9)  # a lease only
    assert await checkpoint(store, gid, "ld", None, "worker-1", LEASE, start=9)
    assert await pieces_stored(database_url) == 3

    generation = await store.get_generation(gid, "alice")
    assert generation is not None
    assert (generation.content, generation.sources) == ("Hello wörld", tuple(sources))
    conversation = await store.get_conversation("alice", cid)
    assert conversation is not None
    assert conversation.messages[-1].content == "Hello wörld"
    assert conversation.messages[-1].sources == tuple(sources)
    assert conversation.messages[0].content == "hi"

    assert await finish(store, gid, "Hello wörld, and more.", sources=tuple(sources))
    assert await pieces_stored(database_url) == 0
    generation = await store.get_generation(gid)
    assert generation is not None and generation.content == "Hello wörld, and more."
    assert await store.history(cid, started.assistant_message_id + 1) == [
        Turn(Role.USER, "hi"),
        Turn(Role.ASSISTANT, "Hello wörld, and more."),
    ]


async def test_a_checkpoint_sent_again_never_doubles_text(store: SqlStore) -> None:
    """The runner sends again from the last confirmed end: after a failure, or after a
    commit whose reply was lost (the store has it, the runner does not know)."""
    cid = await store.create_conversation("alice")
    gid = (await turn(store, "alice", cid, "hi")).generation_id

    async def stored() -> str:
        generation = await store.get_generation(gid)
        assert generation is not None
        return generation.content

    assert await checkpoint(store, gid, "one ", [], "worker-1", LEASE)  # its reply lost
    assert await checkpoint(store, gid, "one two ", [], "worker-1", LEASE)  # sent again
    assert await stored() == "one two "
    assert await checkpoint(store, gid, "one ", [], "worker-1", LEASE)  # a late duplicate
    assert await stored() == "one two "
    assert await checkpoint(store, gid, "three", None, "worker-1", LEASE, start=8)
    assert await checkpoint(store, gid, "three", None, "worker-1", LEASE, start=8)
    assert await stored() == "one two three"


async def test_sweep_merges_the_pieces_into_the_interrupted_answer(
    store: SqlStore, database_url: str
) -> None:
    cid = await store.create_conversation("bob")
    dead = await turn(store, "bob", cid, "worker crashed")
    assert await checkpoint(store, dead.generation_id, "half ", [], "worker-1", LEASE)
    assert await checkpoint(store, dead.generation_id, "an", None, "worker-1", EXPIRED, start=5)
    swept = await store.sweep_expired()
    assert [(g.status, g.content) for g in swept] == [(MessageStatus.INTERRUPTED, "half an")]
    assert await pieces_stored(database_url) == 0
    conversation = await store.get_conversation("bob", cid)
    assert conversation is not None
    assert (conversation.messages[-1].status, conversation.messages[-1].content) == (
        MessageStatus.INTERRUPTED,
        "half an",
    )
    assert await store.history(cid, dead.assistant_message_id + 1) == [
        Turn(Role.USER, "worker crashed"),
        Turn(Role.ASSISTANT, "half an"),
    ]


async def test_deleting_a_running_answer_deletes_its_pieces(
    store: SqlStore, database_url: str
) -> None:
    cid = await store.create_conversation("alice")
    started = await turn(store, "alice", cid, "hi")
    assert await checkpoint(store, started.generation_id, "some text", [], "worker-1", LEASE)
    assert await pieces_stored(database_url) == 1
    assert await store.delete_conversation("alice", cid) == started.generation_id
    assert await pieces_stored(database_url) == 0


async def test_what_checkpoints_write_stays_linear_in_the_answer(store: SqlStore) -> None:
    """Bytes of every value bound to a writing statement (leases included) for an
    answer checkpointed 200 times, a second's worth of words at 30 ms a word each time:
    at most 3 times its final size (rewriting it each time was about 100 times)."""
    cid = await store.create_conversation("alice")
    worker = uuid.uuid4().hex
    started = await store.start_turn("alice", cid, "hi", uuid.uuid4().hex, worker, LEASE)
    gid, message_id = started.generation_id, started.assistant_message_id
    written = 0

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        nonlocal written
        if statement.lstrip().split(None, 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            written += bound_bytes(parameters)

    answer, stored_chars = "", 0
    event.listen(Engine, "before_cursor_execute", count)
    try:
        for number in range(200):
            answer += "".join(f"w{number}.{word} " for word in range(33))
            added = Checkpoint(gid, message_id, stored_chars, answer[stored_chars:])
            assert not await store.checkpoint_many([added], worker, LEASE)
            stored_chars = len(answer)
        assert await finish(store, gid, answer, worker_id=worker)
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert written <= 3 * len(answer.encode()), (written, len(answer.encode()))


def bound_bytes(parameters: Any) -> int:
    """The size of bound values: text as UTF-8, anything else as 8 bytes."""
    if isinstance(parameters, dict):
        return bound_bytes(list(parameters.values()))
    if isinstance(parameters, list | tuple):
        return sum(bound_bytes(value) for value in parameters)
    if isinstance(parameters, str):
        return len(parameters.encode())
    if isinstance(parameters, bytes):
        return len(parameters)
    return 0 if parameters is None else 8
