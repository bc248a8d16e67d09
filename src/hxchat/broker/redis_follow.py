"""One `XREAD` for every reader of a worker: the Redis log's live reads.

A reader that waits for the next events of a generation does not send a blocking
command of its own. It waits on a future; one task per worker keeps a single
`XREAD BLOCK` on one connection of its own over every stream that its readers follow,
and hands each reply out. Under load a reply carries the new events of many streams,
so a word costs a share of a round trip instead of one per reader.

Per followed stream the worker keeps the events it has seen lately (all of them after
`base`): a reader whose cursor lies in that window gets what came after it at once,
without asking Redis; an older cursor (a replay, a reader far behind) is read directly,
once. A stream that nobody asked about for a while is no longer followed.

A stream followed for the first time joins at once: the blocked `XREAD` is ended with
`CLIENT UNBLOCK` and sent again with it (where Redis refuses that command, the read
blocks for 100 ms at a time instead). A lost connection is opened again at once; only
when reads keep failing are the waiting readers failed (the caller turns that into
`BrokerUnavailable`).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio.connection import AbstractConnection

from hxchat.backoff import Backoff
from hxchat.broker.redis_batch import Pool, bulk, release_broken
from hxchat.domain import LogEvent

logger = logging.getLogger(__name__)

StreamId = tuple[int, int]
Parse = Callable[[Any], list[LogEvent]]  # one stream's raw entries as events

KEEP = 1_000  # events kept per followed stream (older cursors are read directly)
IDLE = 30.0  # seconds without a read after which a stream is no longer followed
IDLE_FINISHED = 5.0  # the same for a stream whose final event has come
GATHER = 0.01  # seconds between two reads that found events
SHORT_BLOCK_MS = 100  # the block when the read cannot be unblocked
ATTEMPTS = 3  # reads in a row that failed before the waiting readers are told
FED = 1.0  # seconds after this worker's own append during which the read skips a stream


@dataclass(eq=False, slots=True)
class _Followed:
    """What this worker knows of one stream: every event after `base`, up to `last`."""

    base: StreamId
    last: str
    touched: float
    events: list[LogEvent] = field(default_factory=list)
    ids: list[StreamId] = field(default_factory=list)
    waiters: list[tuple[StreamId, asyncio.Future[list[LogEvent] | None]]] = field(
        default_factory=list
    )
    final: bool = False
    fed: float = float("-inf")  # when this worker's own append last came (`local`)
    key: bytes = b""  # the stream's name as the XREAD sends it (RESP), made once
    _last: tuple[str, bytes] = ("", b"")  # `last` and the same as the XREAD sends it

    def packed_last(self) -> bytes:
        if self._last[0] != self.last:
            self._last = (self.last, bulk(self.last))
        return self._last[1]

    def covers(self, cursor: StreamId) -> bool:
        return cursor >= self.base

    def after(self, cursor: StreamId) -> list[LogEvent]:
        return self.events[bisect.bisect_right(self.ids, cursor) :]

    def add(self, events: list[LogEvent], ids: list[StreamId]) -> None:
        self.events += events
        self.ids += ids
        self.last = events[-1].id
        self.final = self.final or events[-1].kind.is_final
        if len(self.events) > KEEP:
            drop = len(self.events) - KEEP
            self.base = self.ids[drop - 1]
            del self.events[:drop], self.ids[:drop]


class Follower:
    """The worker's shared live read over the streams its readers follow."""

    def __init__(
        self,
        pool: Pool,
        call: Callable[..., Awaitable[Any]],
        parse: Parse,
        block_ms: int,
        count: int,
        timeout: float,
    ) -> None:
        self._pool = pool
        self._call = call  # a command on another connection (to unblock this one)
        self._parse = parse
        self._block_ms = block_ms
        self._count = count
        self._timeout = timeout
        self._followed: dict[str, _Followed] = {}
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the read's (see `wait`)
        self._wake = asyncio.Event()
        self._connection: AbstractConnection | None = None
        self._client_id: int | None = None
        self._unblockable = True  # False when Redis refuses CLIENT ID or CLIENT UNBLOCK
        self._reading: frozenset[str] | None = None  # the streams of the XREAD on the wire
        self._unblocking: asyncio.Task[None] | None = None
        self._closed = False

    # -- readers ----------------------------------------------------------------------

    def known(self, key: str, cursor: StreamId) -> list[LogEvent] | None:
        """The events after `cursor` if this worker has them all; None when it must ask."""
        followed = self._followed.get(key)
        if followed is None or not followed.covers(cursor):
            return None
        followed.touched = time.monotonic()
        return followed.after(cursor)

    def finished(self, key: str) -> bool:
        followed = self._followed.get(key)
        return followed is not None and followed.final

    def follow(self, key: str, cursor: StreamId, events: list[LogEvent]) -> None:
        """Follow `key` from now on, given everything after `cursor` that is there now."""
        if key in self._followed or self._closed:
            return
        followed = _Followed(
            base=cursor,
            last=f"{cursor[0]}-{cursor[1]}",
            touched=time.monotonic(),
            key=bulk(key),
        )
        if events:
            followed.add(events, [_parse_id(event.id) for event in events])
        self._followed[key] = followed
        if followed.final:
            return
        self._wake.set()
        if not self._ensure_running() and self._reading is not None and key not in self._reading:
            self._unblock()

    def local(self, key: str, previous: StreamId, event: LogEvent, event_id: StreamId) -> None:
        """An event this worker appended to `key`, confirmed with id `event_id`, after
        its own `previous` one: readers here get it now, from memory. Only when it
        follows what this worker knows of the stream without a gap (else the shared
        read brings it). A stream fed so recently (`FED`) is left out of the shared
        read: its writer is here; once quiet longer, the read follows it again, and
        brings what anyone else appended (a sweeper's final event)."""
        followed = self._followed.get(key)
        if followed is None:
            return
        last = _parse_id(followed.last)
        if event_id <= last:  # the shared read was faster: known already
            followed.fed = time.monotonic()
            return
        if last != previous:  # a gap: the shared read brings it, and this one with it
            return
        followed.fed = time.monotonic()
        followed.add([event], [event_id])
        _hand_out(followed)

    def _ensure_running(self) -> bool:
        """Start the read if it is not running; False when it was."""
        if self._task is not None and not self._task.done():
            return False
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="hxchat-redis-follower")
        return True

    async def wait(self, key: str, cursor: StreamId, timeout: float) -> list[LogEvent] | None:
        """The next events after `cursor` of a followed stream as soon as they come;
        [] when the cursor fell out of what this worker keeps, None when nothing came
        within `timeout` seconds or the stream is not followed (closed).

        A timer that settles the reader's own future, on the read's loop: a reader
        waits once per event, and this is less work than `asyncio.timeout` and asking
        for the running loop each time (`hxchat/loops.py`)."""
        followed = self._followed.get(key)
        if followed is None or self._closed:
            return None
        self._ensure_running()
        loop = self._loop
        assert loop is not None  # set by _ensure_running
        future: asyncio.Future[list[LogEvent] | None] = loop.create_future()
        waiter = (cursor, future)
        followed.waiters.append(waiter)
        expiry = loop.call_later(timeout, _settle_none, future)
        try:
            return await future
        finally:
            expiry.cancel()
            with suppress(ValueError):
                followed.waiters.remove(waiter)

    # -- the one read -----------------------------------------------------------------

    async def _run(self) -> None:
        backoff, failures = Backoff(0.05, 1.0), 0
        forget_at = 0.0
        while not self._closed:
            if time.monotonic() >= forget_at:  # a scan of every stream: not every read
                self._forget_idle()
                forget_at = time.monotonic() + min(IDLE, IDLE_FINISHED) / 10
            fed = time.monotonic() - FED  # streams fed since are written here: no read
            streams = {k: f for k, f in self._followed.items() if not f.final and f.fed < fed}
            if not streams:
                # Nothing to read, or only streams whose writer is here: look again
                # when the first of those may have gone quiet.
                written_here = any(not f.final for f in self._followed.values())
                self._wake.clear()
                with suppress(TimeoutError):
                    async with asyncio.timeout(FED if written_here else IDLE_FINISHED):
                        await self._wake.wait()
                if not self._followed:
                    return
                continue
            try:
                reply = await self._read(streams)
            except (redis_errors.RedisError, OSError, TimeoutError) as exc:
                # A pooled connection may have died while unused: reconnect at once and
                # try again, like redis-py's retries; fail the readers only after that.
                await self._drop_connection()
                failures += 1
                if failures >= ATTEMPTS:
                    self._fail(exc)
                delay = backoff.next() if failures > 1 else 0.0
                logger.debug("follower lost its connection (%r); again in %.2f s", exc, delay)
                if delay:  # the first time, at once
                    await asyncio.sleep(delay)
                continue
            backoff.reset()
            failures = 0
            for key, entries in per_stream(reply):
                try:
                    self._deliver(key, entries)
                except (ValueError, KeyError, TypeError) as exc:  # not entries of ours
                    logger.warning("unreadable events in %s: %r", key, exc)
                    broken = self._followed.pop(key, None)
                    if broken is not None:
                        self._fail(exc, [broken])
            if reply:  # busy: let events gather for a moment, one read takes them all
                await asyncio.sleep(GATHER)

    async def _read(self, streams: dict[str, _Followed]) -> Any:
        self._reading = frozenset(streams)
        try:
            async with asyncio.timeout(self._block_ms / 1000 + self._timeout):
                connection = await self._connect()
                block_ms = self._block_ms if self._unblockable else SHORT_BLOCK_MS
                # Packed here, each stream's name once and its id when it changes: a busy
                # worker follows hundreds of streams, named at every read.
                command = b"*%d\r\n%b%b%b" % (
                    6 + 2 * len(streams),
                    bulk("XREAD")
                    + bulk("COUNT")
                    + bulk(self._count)
                    + bulk("BLOCK")
                    + bulk(block_ms),
                    b"".join([bulk("STREAMS"), *(f.key for f in streams.values())]),
                    b"".join([f.packed_last() for f in streams.values()]),
                )
                await connection.send_packed_command(command, check_health=False)
                return await connection.read_response()
        finally:
            self._reading = None

    async def _connect(self) -> AbstractConnection:
        if self._connection is None:
            self._connection = await self._pool.get_connection()
            self._client_id = None
        if self._client_id is None and self._unblockable:
            await self._connection.send_command("CLIENT", "ID", check_health=False)
            try:
                self._client_id = int(await self._connection.read_response())
            except redis_errors.ResponseError as exc:
                self._cannot_unblock(exc)
        return self._connection

    def _cannot_unblock(self, exc: Exception) -> None:
        """A Redis that refuses CLIENT ID or CLIENT UNBLOCK (an ACL, a managed service):
        block briefly instead, so that a new stream joins the read within that time."""
        if self._unblockable:
            self._unblockable = False
            logger.warning(
                "Redis refused %r: new streams join the shared read within %d ms",
                str(exc),
                SHORT_BLOCK_MS,
            )

    def _deliver(self, key: str, entries: Any) -> None:
        followed = self._followed.get(key)
        if followed is None or not entries:
            return
        events = self._parse(entries)
        ids = [_parse_id(event.id) for event in events]
        last = _parse_id(followed.last)
        fresh = [i for i, event_id in enumerate(ids) if event_id > last]
        if not fresh:
            return
        followed.add(events[fresh[0] :], ids[fresh[0] :])
        _hand_out(followed)

    def _fail(self, exc: BaseException, streams: Iterable[_Followed] | None = None) -> None:
        for followed in self._followed.values() if streams is None else streams:
            for _cursor, future in followed.waiters:
                if not future.done():
                    future.set_exception(exc)

    def _forget_idle(self) -> None:
        now = time.monotonic()
        for key, followed in list(self._followed.items()):
            idle = IDLE_FINISHED if followed.final else IDLE
            if not followed.waiters and now - followed.touched > idle:
                del self._followed[key]

    def _unblock(self) -> None:
        """End the blocked XREAD so that the next one includes the new stream."""
        if self._unblocking is None or self._unblocking.done():
            self._unblocking = asyncio.create_task(self._send_unblock())

    async def _send_unblock(self) -> None:
        # CLIENT UNBLOCK can reach Redis before the XREAD it is meant for (or that XREAD
        # may still be connecting): then it finds nothing blocked, and is tried again
        # for as long as that same read is on its way.
        reading = self._reading
        while reading is not None and self._reading is reading:
            if not self._unblockable:
                return
            if self._client_id is not None:
                try:
                    if await self._call("CLIENT", "UNBLOCK", self._client_id):
                        return
                except redis_errors.ResponseError as exc:
                    self._cannot_unblock(exc)
                    return
                except (redis_errors.RedisError, OSError, TimeoutError) as exc:
                    logger.debug("could not unblock the follower: %r", exc)
                    return
            await asyncio.sleep(0.005)

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        self._client_id = None
        await release_broken(self._pool, connection)

    async def close(self) -> None:
        self._closed = True
        for task in (self._task, self._unblocking):
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        for followed in self._followed.values():
            for _cursor, future in followed.waiters:
                if not future.done():
                    future.set_result([])  # the reader asks again, and is told
        self._followed.clear()
        await self._drop_connection()


def _hand_out(followed: _Followed) -> None:
    """Give every waiting reader of the stream what came after its cursor."""
    for cursor, future in followed.waiters:
        if not future.done():
            ready = followed.after(cursor) if followed.covers(cursor) else None
            if ready is None:  # fell out of the window meanwhile: let it ask again
                future.set_result([])
            elif ready:
                future.set_result(ready)


def _settle_none(future: asyncio.Future[list[LogEvent] | None]) -> None:
    if not future.done():
        future.set_result(None)


def per_stream(reply: Any) -> list[tuple[str, Any]]:
    """A raw XREAD reply as (stream, entries) pairs: a map in RESP3, pairs in RESP2,
    nil when nothing came."""
    if not reply:
        return []
    pairs = reply.items() if isinstance(reply, dict) else reply
    return [(str(key), entries) for key, entries in pairs]


def _parse_id(value: str) -> StreamId:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq)
