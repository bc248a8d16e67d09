"""Helpers of the tests (and benches) that work on the store and its schema directly:
run work on one connection, compare the schema with `tables.py`, read the revision,
finish an answer as a worker does.

Why here: the migration tests of every issue did each of these, word for word; one
copy keeps them alike (the search index, for one, is the migrations' own and left out
of every comparison).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from hxchat.domain import MessageStatus, Timing, Usage
from hxchat.store.base import TurnStarted
from hxchat.store.engine import make_engine
from hxchat.store.migrate import head_revision, upgrade
from hxchat.store.search import in_metadata
from hxchat.store.sql import SqlStore
from hxchat.store.tables import metadata

T = TypeVar("T")


async def on_connection(database_url: str, work: Callable[[Connection], T]) -> T:
    """Run `work(sync_connection)` in one transaction on the database."""
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(work)
    finally:
        await engine.dispose()


def differences(connection: Connection) -> list[Any]:
    """How the database's schema differs from `tables.py` (the search index, which is
    the migrations' own, left out)."""
    context = MigrationContext.configure(connection, opts={"include_name": in_metadata})
    return list(compare_metadata(context, metadata))


def stored_revision(connection: Connection) -> str:
    return str(connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one())


async def upgrade_from(database_url: str, rows: Callable[[Connection], None]) -> None:
    """Write `rows` (a database at an old revision), upgrade it, and check it is then at
    the newest revision with exactly the schema of `tables.py`."""
    await on_connection(database_url, rows)
    await upgrade(database_url)
    assert await on_connection(database_url, stored_revision) == head_revision()
    assert await on_connection(database_url, differences) == []


async def finish_answer(
    store: SqlStore,
    generation_id: str,
    content: str,
    *,
    usage: Usage | None = None,
    timing: Timing | None = None,
) -> bool:
    """End generation `generation_id` complete with `content`, no sources nor error, as
    worker "w" (the one the tests start their turns with)."""
    return await store.finish(
        generation_id,
        content=content,
        status=MessageStatus.COMPLETE,
        sources=(),
        error=None,
        search_suggestions=None,
        final_event_id=None,
        worker_id="w",
        usage=usage,
        timing=timing,
    )


async def answered_turn(
    store: SqlStore, owner: str, conversation_id: str, question: str, answer: str, gid: str
) -> TurnStarted:
    """A turn of `owner` in the conversation, its answer (generation `gid`) ended
    complete with `answer`: what the store holds after a message and its answer."""
    started = await store.start_turn(owner, conversation_id, question, gid, "w", 60)
    await finish_answer(store, gid, answer)
    return started
