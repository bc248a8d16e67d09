"""Commands of many callers sent together on one connection: the Redis log's writes.

Every append of every answer on a worker goes through here (and the one-off reads of
its readers). While one batch is on the wire the next one fills up, so the busier
the worker, the fewer round trips per command; alone, a command still costs about
half of what a redis-py client call does (no pool checkout, no retry wrapper, no
response callbacks). A caller's time limit is a timer on its reply (`call`'s
`deadline`), and the event loop is asked for only when no batch is under way: less
work per command than `asyncio.timeout` (`hxchat/loops.py`).
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Any, Protocol

from redis import exceptions as redis_errors
from redis.asyncio.connection import AbstractConnection

from hxchat.backoff import Backoff

# A batch whose connection was lost is sent again for this long (a Redis restart or
# failover of a few seconds goes unnoticed), within the callers' 5 s; then they fail.
RETRY_SECONDS = 4.0


Command = tuple[Any, ...] | bytes  # its arguments, or packed in Redis's protocol


class Pool(Protocol):
    """The part of a redis-py connection pool used here: hand out a connection, take
    it back. (A pool's `get_connection` has no annotations; this gives it its type.)"""

    async def get_connection(self) -> AbstractConnection: ...

    async def release(self, connection: AbstractConnection) -> None: ...


class Batched:
    """One connection's queue of commands, sent in batches.

    A connection lost mid-batch is reconnected and what had no reply yet is sent again
    (appends carry a token that makes this safe), like redis-py's own retries. A
    command's error reply fails that command only.
    """

    def __init__(self, pool: Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout  # seconds a batch may take on the wire
        self._queue: list[tuple[Command, asyncio.Future[Any]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._batch: list[tuple[Command, asyncio.Future[Any]]] = []
        self._connection: AbstractConnection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop; while a batch is under way, the one it runs in."""
        if self._sender is None or self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    async def call(self, *command: Any, deadline: float | None = None) -> Any:
        """The command's reply; `TimeoutError` when it has not come by `deadline` (loop
        time), though the command may still be sent."""
        return await self.call_packed(command, deadline)

    async def call_packed(self, command: Command, deadline: float | None = None) -> Any:
        """`call` with the command's arguments, or the command already in Redis's
        protocol (bytes: a caller that sends the same arguments again and again packs
        them itself, faster than a generic packer)."""
        future = self._enqueue(command)
        if deadline is None:
            return await future
        timer = self.loop().call_at(deadline, _expire, future)
        try:
            return await future
        finally:
            timer.cancel()

    async def call_many(self, *commands: tuple[Any, ...], deadline: float) -> list[Any]:
        """Several commands in one round trip (in order, not atomic); the first error
        is raised, and `TimeoutError` when the replies have not come by `deadline`."""
        futures = [self._enqueue(command) for command in commands]
        timers = [self.loop().call_at(deadline, _expire, future) for future in futures]
        try:
            replies = await asyncio.gather(*futures, return_exceptions=True)
        finally:
            for timer in timers:
                timer.cancel()
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        return replies

    def _enqueue(self, command: Command) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.loop().create_future()
        self._queue.append((command, future))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_all(), name="hxchat-redis-batches")
        return future

    async def _send_all(self) -> None:
        try:
            while self._queue:
                self._batch, self._queue = self._queue, []
                await self._send(self._batch)
        finally:
            self._sender = None

    async def _send(self, batch: list[tuple[Command, asyncio.Future[Any]]]) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + RETRY_SECONDS
        backoff = Backoff(0.05, 0.5)
        while True:
            try:
                async with asyncio.timeout(self._timeout):
                    if self._connection is None:
                        self._connection = await self._pool.get_connection()
                    connection = self._connection
                    packed = b"".join(
                        command if isinstance(command, bytes) else _pack(connection, command)
                        for command, _ in batch
                    )
                    await connection.send_packed_command(packed, check_health=False)
                    while batch:
                        _command, future = batch[0]
                        try:
                            reply = await connection.read_response()
                        except redis_errors.ResponseError as exc:
                            _settle(future, error=exc)
                        else:
                            _settle(future, reply)
                        del batch[0]
                return
            except (redis_errors.ConnectionError, OSError, TimeoutError) as exc:
                await self._drop_connection()
                delay = backoff.next()
                if isinstance(exc, TimeoutError) or loop.time() + delay > give_up:
                    for _command, future in batch:
                        _settle(future, error=exc)
                    return
            except BaseException:
                await self._drop_connection()
                raise
            await asyncio.sleep(delay)

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        await release_broken(self._pool, connection)

    async def close(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with suppress(asyncio.CancelledError):
                await self._sender
        for _command, future in self._batch + self._queue:
            future.cancel()
        await self._drop_connection()


def bulk(value: str | int) -> bytes:
    """One value as a RESP bulk string: text as UTF-8 (as redis-py's encoder), a number
    in decimal. For commands sent again and again (appends, the shared read), packed
    by their callers: a fraction of redis-py's generic packer."""
    data = value.encode() if isinstance(value, str) else b"%d" % value
    return b"$%d\r\n%b\r\n" % (len(data), data)


def _pack(connection: AbstractConnection, command: tuple[Any, ...]) -> bytes:
    return b"".join(connection.pack_command(*command))


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


def _settle(
    future: asyncio.Future[Any], reply: Any = None, error: BaseException | None = None
) -> None:
    if future.done():  # its caller gave up (cancelled, timed out)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(reply)


async def release_broken(pool: Pool, connection: AbstractConnection | None) -> None:
    """Close a connection that a failure left in an unknown state, and give it back to
    its pool (which opens it again when it is next handed out)."""
    if connection is not None:
        with suppress(Exception):
            await connection.disconnect(nowait=True)
        with suppress(Exception):
            await pool.release(connection)
