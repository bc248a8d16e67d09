"""The `Store` on SQLAlchemy: SQLite by default, PostgreSQL for many hosts.

Each method is one short transaction, written once as a plain synchronous function
over a `sqlalchemy.engine.Connection` (in `queries` and `leases`), and run in one
step:

- SQLite: on a sync engine over the stdlib driver, in one dedicated thread that does
  all of this store's SQLite work (`engine.SqliteThread`): the event loop hands over
  a whole transaction and is woken once, when it is done. SQLite serializes writers
  anyway, and readers in WAL mode are cheap, so the single thread costs nothing.
  Before, with the async engine on aiosqlite, every statement took ~4 thread hops
  (cursor, execute, fetch, close) plus hops for BEGIN, COMMIT and the pool's reset,
  each ~100 µs of GIL hand-off and event-loop wake-ups: ~9 for a `get_generation`.
  With one hop per transaction, and the frequent statements built once (`leases`),
  CPU per call went (one machine, ms) from 2.4 to 0.4 for `start_turn`, 1.1 to 0.14
  for `get_generation`, 1.3 to 0.3 for `finish`, and 150 to 6 for `checkpoint_many`
  of 300 answers (one `executemany`).
- PostgreSQL: the async engine (asyncpg) runs the same function through
  `AsyncConnection.run_sync`, which awaits each statement on asyncpg underneath.

Transactions that write begin with `BEGIN IMMEDIATE` on SQLite (see `engine`);
failures are translated by `engine.translate_errors` on both paths. A caller that is
cancelled while its transaction runs in the SQLite thread does not stop it: the
transaction completes there (nothing is lost or left half-done) and only its result
is dropped, as if the cancellation had come just after it (which is why the runner
shields the start of a turn: a turn that was stored is also answered).

The conversations and turns live in `queries` (the tree of versions and the path a
conversation shows in `tree`); the concurrency rules (the
per-conversation lock and the generation lease) in `leases`; the rules about values
(titles, sources as JSON) in `records`; how a streaming answer's checkpoints are kept
(pieces of text, merged at its end) in `pieces`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from hxchat.domain import MessageStatus, ModelChoice, Source, Timing, Turn, Usage
from hxchat.store import leases, queries, rendered, search_query
from hxchat.store.base import (
    Checkpoint,
    Conversation,
    ConversationSummary,
    Generation,
    KeptHtml,
    SearchHit,
    Store,
    TurnStarted,
)
from hxchat.store.engine import (
    SqliteThread,
    make_engine,
    parse_url,
    translate_errors,
    writer,
)
from hxchat.store.tables import settings

SIGNING_KEY_ROW = "secret_key"  # the `settings` row that keeps it

P = ParamSpec("P")
T = TypeVar("T")


class SqlStore:
    """Conversations and messages in a SQL database (see `hxchat.store.base.Store`)."""

    def __init__(self, database_url: str) -> None:
        self._url = parse_url(database_url)
        self._engine = make_engine(database_url)
        self._writer = writer(self._engine)
        # For a read of one statement: no BEGIN and COMMIT around it (on PostgreSQL two
        # round trips of three; SQLite's thread has no round trips to save).
        self._statement = self._engine.execution_options(isolation_level="AUTOCOMMIT")
        self._sqlite = (
            SqliteThread(database_url) if self._url.get_backend_name() == "sqlite" else None
        )

    async def _read(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`work(connection, ...)` in one transaction."""
        return await self._transact(False, False, work, *args, **kwargs)

    async def _write(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`work(connection, ...)` in one transaction that writes (IMMEDIATE on SQLite)."""
        return await self._transact(True, False, work, *args, **kwargs)

    async def _transact(
        self,
        write: bool,
        single: bool,
        work: Callable[Concatenate[Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`work(connection, ...)` in one transaction; `single`: a read of one statement,
        without a transaction around it."""
        with translate_errors(self._url):
            if self._sqlite is not None:
                return await self._sqlite.run(write, work, *args, **kwargs)
            reader = self._statement if single else self._engine
            try:
                async with (self._writer if write else reader).begin() as conn:
                    return await conn.run_sync(work, *args, **kwargs)
            except DBAPIError as exc:
                # A connection that died unnoticed (no pre-ping, see `engine`): the pool
                # has dropped it and its peers. A read is tried again at once; a write
                # may have committed, so it fails (its callers retry as they see fit).
                if write or not exc.connection_invalidated:
                    raise
            async with reader.begin() as conn:
                return await conn.run_sync(work, *args, **kwargs)

    async def run(
        self,
        write: bool,
        work: Callable[Concatenate[Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`work(connection, ...)` in one transaction, for the store's neighbours that
        keep their statements in a module of their own (`store.accounts`)."""
        return await self._transact(write, False, work, *args, **kwargs)

    async def read_one(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`work(connection, ...)` that reads with one statement: without a transaction
        around it (on PostgreSQL one round trip instead of three)."""
        return await self._transact(False, True, work, *args, **kwargs)

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the database answers."""
        await self._read(_ping)

    async def close(self) -> None:
        """Close every pooled connection."""
        try:
            if self._sqlite is not None:
                await self._sqlite.dispose()
        finally:
            await self._engine.dispose()

    async def secret_key(self, candidate: str) -> str:
        """The shared signing key: `candidate` is kept if none is stored yet (race-safe)."""
        return await self._write(_secret_key, candidate)

    # -- conversations ------------------------------------------------------------

    async def create_conversation(self, owner: str) -> str:
        """A new, empty conversation; returns its id."""
        return await self._write(queries.create_conversation, owner)

    async def list_conversations(self, owner: str, limit: int = 200) -> list[ConversationSummary]:
        """The owner's conversations, last activity first."""
        return await self._read(queries.list_conversations, owner, limit)

    async def get_conversation(self, owner: str, conversation_id: str) -> Conversation | None:
        """One conversation with all its messages in order, or None (absent or foreign)."""
        return await self._read(queries.get_conversation, owner, conversation_id)

    async def search(self, owner: str, query: str) -> list[SearchHit]:
        """The owner's best matches for `query` (see `store.search_query`)."""
        return await self._read(search_query.find, owner, query)

    async def delete_conversation(self, owner: str, conversation_id: str) -> str | None:
        """Delete it with its messages; the running generation's id, "" or None."""
        return await self._write(queries.delete_conversation, owner, conversation_id)

    # -- turns ----------------------------------------------------------------------

    async def start_turn(
        self,
        owner: str,
        conversation_id: str,
        content: str,
        generation_id: str,
        worker_id: str,
        lease_seconds: float,
        choice: ModelChoice | None = None,
        model_title: bool = False,
        files: Sequence[str] = (),
        most_running: int | None = None,
    ) -> TurnStarted:
        """Store the user's message (with its `files`) and an assistant placeholder."""
        return await self._write(
            queries.start_turn,
            owner,
            conversation_id,
            content,
            generation_id,
            worker_id,
            lease_seconds,
            choice,
            model_title,
            files,
            most_running,
        )

    async def start_retry(
        self,
        owner: str,
        conversation_id: str,
        generation_id: str,
        worker_id: str,
        lease_seconds: float,
        choice: ModelChoice | None = None,
        most_running: int | None = None,
    ) -> TurnStarted:
        """A new version of the path's last answer, as a new placeholder."""
        return await self._write(
            queries.start_retry,
            owner,
            conversation_id,
            generation_id,
            worker_id,
            lease_seconds,
            choice,
            most_running,
        )

    async def start_edit(
        self,
        owner: str,
        message_id: int,
        content: str,
        generation_id: str,
        worker_id: str,
        lease_seconds: float,
        conversation_id: str | None = None,
        choice: ModelChoice | None = None,
        most_running: int | None = None,
    ) -> TurnStarted:
        """A new version of a user's message, and a placeholder answering it."""
        return await self._write(
            queries.start_edit,
            owner,
            message_id,
            content,
            generation_id,
            worker_id,
            lease_seconds,
            conversation_id,
            choice,
            most_running,
        )

    async def start_regenerate(
        self,
        owner: str,
        message_id: int,
        generation_id: str,
        worker_id: str,
        lease_seconds: float,
        conversation_id: str | None = None,
        choice: ModelChoice | None = None,
        most_running: int | None = None,
    ) -> TurnStarted:
        """A new version of an answer, as a placeholder beside it."""
        return await self._write(
            queries.start_regenerate,
            owner,
            message_id,
            generation_id,
            worker_id,
            lease_seconds,
            conversation_id,
            choice,
            most_running,
        )

    async def select_version(
        self, owner: str, message_id: int, conversation_id: str | None = None
    ) -> Conversation:
        """The path now runs through this message; the conversation as it shows now."""
        return await self._write(queries.select_version, owner, message_id, conversation_id)

    async def history(self, conversation_id: str, before_message_id: int) -> list[Turn]:
        """What the model sees before `before_message_id`, oldest first."""
        return await self._read(queries.history, conversation_id, before_message_id)

    # -- generations ------------------------------------------------------------------

    async def get_generation(
        self, generation_id: str, owner: str | None = None
    ) -> Generation | None:
        """The generation, scoped to `owner` unless it is None (internal callers)."""
        return await self._read(leases.select_generation, generation_id, owner)

    async def checkpoint_many(
        self, checkpoints: Sequence[Checkpoint], worker_id: str, lease_seconds: float
    ) -> set[str]:
        """Add the answers' new text and renew their leases, in one transaction; returns
        the ids no longer held by `worker_id`."""
        if not checkpoints:
            return set()
        return await self._write(leases.renew_many, checkpoints, worker_id, lease_seconds)

    async def finish(
        self,
        generation_id: str,
        *,
        content: str,
        status: MessageStatus,
        sources: Sequence[Source],
        error: str | None,
        search_suggestions: str | None,
        final_event_id: str | None,
        worker_id: str | None,
        usage: Usage | None = None,
        timing: Timing | None = None,
    ) -> bool:
        """Store the final answer and release the conversation; False if nothing changed."""
        return await self._write(
            leases.release,
            generation_id,
            content=content,
            status=status,
            sources=sources,
            error=error,
            search_suggestions=search_suggestions,
            final_event_id=final_event_id,
            worker_id=worker_id,
            usage=usage,
            timing=timing,
        )

    async def keep_rendered(self, kept: Sequence[KeptHtml]) -> None:
        """Keep these answers' HTML (`store/rendered.py`)."""
        if kept:
            await self._write(rendered.keep, kept)

    async def sweep_expired(
        self, include_live: bool = False, spare_worker: str | None = None
    ) -> list[Generation]:
        """Mark answers whose lease expired `interrupted`, release them, return them."""
        return await self._write(leases.sweep, include_live, spare_worker)


async def open_store(database_url: str) -> SqlStore:
    """A `SqlStore` whose database has answered; raises `StoreUnavailable` otherwise."""
    store = SqlStore(database_url)
    try:
        await store.ping()
    except BaseException:
        await store.close()
        raise
    return store


# -- the transactions of the store itself (the others are in `queries`) -----------------

_PING = select(1)


def _ping(conn: Connection) -> None:
    conn.execute(_PING)


def _secret_key(conn: Connection, candidate: str) -> str:
    values = {"key": SIGNING_KEY_ROW, "value": candidate}
    statement: Insert
    if conn.dialect.name == "postgresql":
        statement = pg_insert(settings).values(values).on_conflict_do_nothing()
    else:
        statement = sqlite_insert(settings).values(values).on_conflict_do_nothing()
    conn.execute(statement)
    stored = conn.scalar(select(settings.c.value).where(settings.c.key == SIGNING_KEY_ROW))
    return str(stored)


if TYPE_CHECKING:
    _implements_the_protocol: type[Store] = SqlStore
