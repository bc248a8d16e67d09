"""The engines for either database, and the translation of their failures.

`make_engine` is the async engine (aiosqlite or asyncpg): migrations use it, and the
store uses it on PostgreSQL. On SQLite the store runs its transactions on a sync engine
over the stdlib driver instead, in one dedicated thread (`SqliteThread`; why: see
`hxchat.store.sql`). Both SQLite engines are set up alike (`_configure_sqlite`).

SQLite needs care to be a good server database: WAL (readers never wait for the
writer), foreign keys (the cascade on conversations), a busy timeout (writers queue
instead of failing), and `BEGIN IMMEDIATE` for transactions that write, so that a
transaction never reads a snapshot and then fails to upgrade it to a write lock
("database is locked" that no timeout can cure). The sqlite3 driver's own
transaction handling is switched off for that (SQLAlchemy's documented recipe).

PostgreSQL: a pooled connection that the server closed (a restart, a terminated
backend) is replaced when it is checked out, without a round trip: asyncpg has seen
the socket close (`_drop_closed`). `pool_pre_ping` did the same with a ping, which on
asyncpg is three round trips (BEGIN, an empty query, ROLLBACK) before every
transaction: half of a short transaction's round trips, each a system call that wakes
PostgreSQL (bench/README.md). A connection that dies unnoticed fails its transaction
with `StoreUnavailable`, and SQLAlchemy then replaces every connection of the pool
that is as old; reads are tried once more at once (`hxchat.store.sql`).

PostgreSQL's text cannot hold a NUL character, and a NUL typed by a user or written
by a hostile model would fail the statement (a 500, an answer lost). Both engines
therefore write every NUL of a string parameter as U+FFFD, as the renderer shows it
(`_without_nul`): the two databases keep the same text, and nothing fails.

Every database failure that means "not reachable now" becomes `StoreUnavailable`
with one sentence that names the host or file but never the URL's credentials.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar, overload

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
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
SQLITE_THREAD_NAME = "hxchat-sqlite"

P = ParamSpec("P")
T = TypeVar("T")


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
            _configure_sqlite(engine.sync_engine, url)
            return engine
        engine = create_async_engine(url, connect_args={"timeout": PG_CONNECT_TIMEOUT_S})
        event.listen(engine.sync_engine, "checkout", _drop_closed)
        _without_nul(engine.sync_engine)
        return engine
    except (ArgumentError, NoSuchModuleError):
        raise ConfigError(
            "HXCHAT_DATABASE_URL",
            "use sqlite+aiosqlite:///path/to/file.db or postgresql+asyncpg://user@host/db",
        ) from None


def _drop_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled PostgreSQL connection that the server has closed is replaced (the pool
    tries another) before a transaction is begun on it."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this connection")


def make_sqlite_engine(database_url: str) -> Engine:
    """A sync engine on the stdlib driver (pysqlite) for the same SQLite database.

    Set up exactly like `make_engine`'s; to be used from one thread only (`SqliteThread`).
    """
    url = parse_url(database_url)
    engine = create_engine(url.set(drivername="sqlite+pysqlite"))
    _configure_sqlite(engine, url)
    return engine


def _without_nul(engine: Engine) -> None:
    """Every NUL of a string parameter becomes U+FFFD before the statement runs."""

    def clean(value: object) -> object:
        return value.replace("\0", "\ufffd") if isinstance(value, str) and "\0" in value else value

    def clean_row(row: Any) -> Any:
        if isinstance(row, dict):
            return {key: clean(value) for key, value in row.items()}
        return type(row)(clean(value) for value in row)

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _before_execute(
        _conn: Connection, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> tuple[str, Any]:
        if parameters:
            parameters = [clean_row(row) for row in parameters] if many else clean_row(parameters)
        return statement, parameters


def _configure_sqlite(engine: Engine, url: URL) -> None:
    _without_nul(engine)

    @event.listens_for(engine, "do_connect")
    def _before_connect(*_args: Any) -> None:
        # Said before the driver opens anything: after a failed connect, aiosqlite's
        # thread outlives the attempt and writes a traceback if the event loop is gone.
        directory = _missing_directory(url)
        if directory is not None:
            raise StoreUnavailable(
                f"The database ({describe(url)}) cannot be opened: "
                f"the directory {directory} does not exist."
            )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We emit BEGIN ourselves (below); the driver's implicit one is off.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS:d}")
            _enable_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _enable_wal(cursor: Any) -> None:
    """Put the database in WAL mode (kept in the file, so it is set once for everyone).

    Switching a new file to WAL is refused with "database is locked", without waiting,
    while another connection is writing it. That writer set WAL itself before it began
    (every connection comes through here), so this connection will find the file in WAL
    mode once the writer is done: the refusal can be ignored."""
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    except Exception as exc:
        if "database is locked" not in str(exc):
            raise


def _missing_directory(url: URL) -> Path | None:
    """The directory that should hold the SQLite file but does not exist, if any."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or url.query.get("uri"):
        return None
    directory = Path(database).parent
    return None if directory.is_dir() else directory


@overload
def writer(engine: AsyncEngine) -> AsyncEngine: ...
@overload
def writer(engine: Engine) -> Engine: ...
def writer(engine: AsyncEngine | Engine) -> AsyncEngine | Engine:
    """The same engine and pool, for transactions that write (IMMEDIATE on SQLite)."""
    return engine.execution_options(**{IMMEDIATE: True})


class SqliteThread:
    """A sync SQLite engine and the one thread that uses it.

    Every transaction given to `run` is run whole in that thread, one after another:
    SQLite serializes writers anyway, and a pysqlite connection belongs to the thread
    that uses it (so `dispose` closes the connections there too). The thread is started
    on first use; `dispose` stops it, and a later `run` would start a new one.
    """

    def __init__(self, database_url: str) -> None:
        self._engine = make_sqlite_engine(database_url)
        self._writer = writer(self._engine)
        self._executor: ThreadPoolExecutor | None = None

    async def run(
        self,
        write: bool,
        work: Callable[Concatenate[Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`work(connection, *args, **kwargs)` in one transaction (IMMEDIATE if `write`)."""
        engine = self._writer if write else self._engine

        def transaction() -> T:
            with engine.begin() as conn:
                return work(conn, *args, **kwargs)

        return await self._call(transaction)

    async def dispose(self) -> None:
        """Close the pooled connections (in the thread) and stop the thread."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._engine.dispose)
        finally:
            executor.shutdown(wait=False)  # idle by now: it ends at once

    async def _call(self, function: Callable[[], T]) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=SQLITE_THREAD_NAME
            )
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)


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
