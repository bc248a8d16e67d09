"""Alembic's environment for hxchat's schema.

`hxchat.store.migrate` runs Alembic with a connection already open (and, on
PostgreSQL, holding an advisory lock) in `config.attributes["connection"]`; this
file then only runs the migrations on it. For developers who run the `alembic`
command from the repository (its alembic.ini), the database comes from
`HXCHAT_DATABASE_URL`, else `sqlalchemy.url`. Logging is left to the application:
no `fileConfig` here.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from hxchat.store.engine import make_engine, writer
from hxchat.store.search import in_metadata
from hxchat.store.tables import metadata

DEFAULT_URL = "sqlite+aiosqlite:///./hxchat.db"


def _configure(
    connection: Connection | None = None, url: str | None = None, literal_binds: bool = False
) -> None:
    context.configure(
        connection=connection,
        url=url,
        literal_binds=literal_binds,
        target_metadata=metadata,
        compare_type=True,
        include_name=in_metadata,  # the search index is the migrations' own (#12)
        render_as_batch=True,  # SQLite can ALTER little; batch mode copies the table
    )


def run_on(connection: Connection) -> None:
    """Run the pending migrations on an open connection."""
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def database_url() -> str:
    """The developer's database: `HXCHAT_DATABASE_URL`, else alembic.ini's URL."""
    return (
        os.environ.get("HXCHAT_DATABASE_URL")
        or context.config.get_main_option("sqlalchemy.url")
        or DEFAULT_URL
    )


async def run_from_url(url: str) -> None:
    """Open the database at `url` and run the pending migrations on it."""
    engine = make_engine(url)
    try:
        async with writer(engine).begin() as conn:
            await conn.run_sync(run_on)
    finally:
        await engine.dispose()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if context.is_offline_mode():
        _configure(url=database_url(), literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    elif connection is not None:
        run_on(connection)
    else:
        asyncio.run(run_from_url(database_url()))


main()
