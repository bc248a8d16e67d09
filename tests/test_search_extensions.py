"""Search on PostgreSQL without its extensions (#12): a role that may create tables but
not extensions upgrades a fresh database; the migration goes on with one warning per
missing extension, and searching works, only without folding accents."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from hxchat.store.migrate import upgrade
from hxchat.store.sql import open_store
from tests.helpers import fresh_postgres_database, require_postgres
from tests.store_helpers import answered_turn

pytestmark = pytest.mark.postgres


async def admin(url: str, *statements: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
async def database_without_extensions() -> AsyncIterator[str]:
    """A fresh database and a role of its own that may create tables in it, not
    extensions (no CREATE on the database); both are dropped afterwards."""
    server = require_postgres()
    role = f"hxchat_test_{uuid.uuid4().hex[:12]}"
    await admin(server, f'CREATE ROLE "{role}" LOGIN')
    try:
        async with fresh_postgres_database(server) as url:
            await admin(url, f'GRANT CREATE, USAGE ON SCHEMA public TO "{role}"')
            yield make_url(url).set(username=role).render_as_string(hide_password=False)
            await admin(url, f'DROP OWNED BY "{role}"')
    finally:
        await admin(server, f'DROP ROLE IF EXISTS "{role}"')


async def test_without_extensions_search_works_without_folding_accents(
    database_without_extensions: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = database_without_extensions
    with caplog.at_level(logging.WARNING):
        await upgrade(url)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("unaccent is not available" in w and "fold accents" in w for w in warnings)
    assert any("btree_gin is not available" in w for w in warnings)

    store = await open_store(url)
    try:
        cid = await store.create_conversation("alice")
        answer = "le café est chaud"
        started = await answered_turn(store, "alice", cid, "un café crème", answer, "g1")
        found = await store.search("alice", "café crè")
        assert [hit.message_id for hit in found] == [started.user_message_id]
        assert len(await store.search("alice", "café")) == 2
        assert await store.search("alice", "cafe") == []  # accents are not folded here
        assert await store.search("bob", "café") == []
    finally:
        await store.close()
