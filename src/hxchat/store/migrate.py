"""Schema migrations: bring the database to this version's schema, or tell if it is.

Alembic is configured here in code from the scripts shipped inside the package
(`hxchat/store/migrations`), so an installed hxchat needs no alembic.ini. `hxchat
serve` upgrades an embedded SQLite database by itself and refuses to start on a
PostgreSQL database whose schema is behind; `hxchat db upgrade` runs `upgrade`.

Concurrent upgrades are safe: on SQLite the migration runs in one `BEGIN IMMEDIATE`
transaction, on PostgreSQL under a transaction-scoped advisory lock, so a second
runner waits and then finds nothing left to do.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from hxchat.store.engine import make_engine, parse_url, transaction, writer

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# An arbitrary constant that names hxchat's migration lock among PostgreSQL advisory locks.
PG_ADVISORY_LOCK = 0x68786368  # "hxch"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code; `connection` is the one to migrate."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The revision this version of hxchat expects the database to be at."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError(f"no migrations found in {MIGRATIONS}")
    return head


def _upgrade_on(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


def _current_heads(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection).get_current_heads())


async def upgrade(database_url: str) -> None:
    """Create or upgrade the schema to `head_revision()`; does nothing when current."""
    url = parse_url(database_url)
    engine = make_engine(database_url)
    try:
        async with transaction(writer(engine), url) as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_ADVISORY_LOCK}
                )
            await conn.run_sync(_upgrade_on)
    finally:
        await engine.dispose()
    logger.info("database schema is at revision %s", head_revision())


async def schema_is_current(database_url: str) -> bool:
    """True when the database's schema is at `head_revision()` (False when empty)."""
    url = parse_url(database_url)
    engine = make_engine(database_url)
    try:
        async with transaction(engine, url) as conn:
            heads = await conn.run_sync(_current_heads)
    finally:
        await engine.dispose()
    return heads == (head_revision(),)
