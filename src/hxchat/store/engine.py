"""The async engine for either database, and the translation of its failures.

SQLite needs care to be a good server database: WAL (readers never wait for the
writer), foreign keys (the cascade on conversations), a busy timeout (writers queue
instead of failing), and `BEGIN IMMEDIATE` for transactions that write, so that a
transaction never reads a snapshot and then fails to upgrade it to a write lock
("database is locked" that no timeout can cure). The sqlite3 driver's own
transaction handling is switched off for that (SQLAlchemy's documented recipe).

PostgreSQL uses `pool_pre_ping`, so pooled connections that died with a server
restart are replaced instead of failing the next request.

Every database failure that means "not reachable now" becomes `StoreUnavailable`
with one sentence that names the host or file but never the URL's credentials.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from hxchat.errors import ConfigError, SchemaOutOfDate, StoreUnavailable

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 10_000
PG_CONNECT_TIMEOUT_S = 10.0
IMMEDIATE = "hxchat_sqlite_immediate"  # execution option: this transaction will write


def parse_url(database_url: str) -> URL:
    """The URL as SQLAlchemy sees it; a malformed one is a configuration error."""
    try:
        return make_url(database_url)
    except ArgumentError:
        raise ConfigError("HXCHAT_DATABASE_URL", "is not a valid database URL") from None


def describe(url: URL) -> str:
    """Where the database is, for messages: host, port and name, never credentials."""
    if url.get_backend_name() == "sqlite":
        return f"file {url.database or ':memory:'}"
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def make_engine(database_url: str) -> AsyncEngine:
    """An async engine set up for hxchat on SQLite (aiosqlite) or PostgreSQL (asyncpg)."""
    url = parse_url(database_url)
    try:
        if url.get_backend_name() == "sqlite":
            engine = create_async_engine(url)
            _configure_sqlite(engine, url)
            return engine
        return create_async_engine(
            url,
            pool_pre_ping=True,
            connect_args={"timeout": PG_CONNECT_TIMEOUT_S},
        )
    except (ArgumentError, NoSuchModuleError):
        raise ConfigError(
            "HXCHAT_DATABASE_URL",
            "use sqlite+aiosqlite:///path/to/file.db or postgresql+asyncpg://user@host/db",
        ) from None


def _configure_sqlite(engine: AsyncEngine, url: URL) -> None:
    @event.listens_for(engine.sync_engine, "do_connect")
    def _before_connect(*_args: Any) -> None:
        # Said before aiosqlite starts its thread: after a failed connect, that thread
        # outlives the attempt and writes a traceback if the event loop is gone by then.
        directory = _missing_directory(url)
        if directory is not None:
            raise StoreUnavailable(
                f"The database ({describe(url)}) cannot be opened: "
                f"the directory {directory} does not exist."
            )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We emit BEGIN ourselves (below); the driver's implicit one is off.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS:d}")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _missing_directory(url: URL) -> Path | None:
    """The directory that should hold the SQLite file but does not exist, if any."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or url.query.get("uri"):
        return None
    directory = Path(database).parent
    return None if directory.is_dir() else directory


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same engine and pool, for transactions that write (IMMEDIATE on SQLite)."""
    return engine.execution_options(**{IMMEDIATE: True})


@asynccontextmanager
async def transaction(engine: AsyncEngine, url: URL) -> AsyncIterator[AsyncConnection]:
    """`engine.begin()`, with database failures translated into hxchat's errors."""
    with translate_errors(url):
        async with engine.begin() as conn:
            yield conn


@contextmanager
def translate_errors(url: URL) -> Iterator[None]:
    """Turn "the database is not there" into `StoreUnavailable`; let the rest through."""
    try:
        yield
    except asyncio.CancelledError:
        raise
    except (DBAPIError, OSError, TimeoutError, PoolTimeoutError) as exc:
        if _is_missing_schema(exc):
            raise SchemaOutOfDate() from exc
        reason = _unavailable_reason(exc)
        if reason is None:
            raise
        logger.warning("database %s unavailable: %s", describe(url), reason)
        raise StoreUnavailable(
            f"The database ({describe(url)}) cannot be reached right now ({reason}); "
            "please try again in a moment."
        ) from exc


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _is_missing_schema(exc: BaseException) -> bool:
    for item in _chain(exc):
        if "UndefinedTableError" in _names(item):
            return True
        if type(item).__module__ == "sqlite3" and "no such table" in str(item):
            return True
    return False


def _unavailable_reason(exc: BaseException) -> str | None:
    """A few words on why the database is unreachable, or None if it is not that."""
    for item in _chain(exc):
        names = _names(item)
        if isinstance(item, ConnectionRefusedError):
            return "connection refused"
        if isinstance(item, socket.gaierror):
            return "unknown host name"
        if isinstance(item, TimeoutError | PoolTimeoutError):
            return "timed out"
        if isinstance(item, OSError):
            return (item.strerror or "network error").lower()
        if "InvalidAuthorizationSpecificationError" in names:
            return "the login was refused"
        if "InvalidCatalogNameError" in names:
            return "the database does not exist"
        if "OperatorInterventionError" in names:
            return "the server is starting up or shutting down"
        if "InsufficientResourcesError" in names:
            return "the server has no resources left, e.g. too many connections"
        if "PostgresConnectionError" in names or "ConnectionDoesNotExistError" in names:
            return "the connection was lost"
        if type(item).__module__ == "sqlite3":
            text = str(item)
            if "unable to open" in text:
                return "the file cannot be opened"
            if "locked" in text or "busy" in text:
                return "it stayed busy for too long"
            if "disk" in text or "readonly" in text:
                return text
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return "the connection was lost"
    if isinstance(exc, OperationalError | InterfaceError):
        return "the connection failed"
    return None
