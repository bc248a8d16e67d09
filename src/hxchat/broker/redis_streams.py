"""The event log on Redis Streams: any worker can serve any stream and stop any answer.

Keys, for a generation `g` under the prefix `p`:

- `p:gen:g` the stream; its entry ids are the event ids (the SSE ids), fields `kind`,
  `data` (JSON) and `t` (a token that makes a retried append idempotent);
- `p:gen:g:open` a marker that `create` sets, so that a reader who comes before the
  first event waits instead of seeing a missing log;
- `p:gen:g:end` the final event's id, so `position` can answer AT_END;
- `p:cancel:g` the cancel flag, announced on the channel `p:cancel`.

While a generation runs, its keys live a day, renewed by each append (a writer that
died without a final event cannot leave them forever); the final event sets all of
them to expire after `ttl`. An append is one Lua script, so the checks (already
finished? too many events? this very append retried?) and the writes are atomic.

Appends (and one-off reads) of all generations share round trips on one connection
(redis_batch.py); live readers share one `XREAD BLOCK` per worker (redis_follow.py),
except readers of an answer this worker writes, which get its appends from memory as
they are confirmed; a reader that waited in vain checks that the log still exists.
Cancel requests are flags announced on a channel, which one subscription per instance
hears (redis_cancel.py). Connection failures become
`BrokerUnavailable`, whose sentence names the host but never the password; redis-py
reconnects by itself once Redis is back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from hxchat import loops
from hxchat.broker.base import Position, plain
from hxchat.broker.redis_append import (
    APPEND,
    FINISHED,
    TOO_MANY,
    Appends,
    event_of,
    packed_append,
)
from hxchat.broker.redis_batch import Batched
from hxchat.broker.redis_cancel import CancelFlags
from hxchat.broker.redis_follow import Follower, per_stream
from hxchat.domain import EventKind, LogEvent
from hxchat.errors import AppendUncertain, BrokerUnavailable

logger = logging.getLogger(__name__)

RUNNING_TTL = 86_400.0  # keys of a running generation and cancel flags live a day
BLOCK_MS = 5_000  # one XREAD BLOCK of the follower (a quiet reader waits less)
COMMAND_TIMEOUT = 5.0  # seconds a command (or waiting for a pooled connection) may take
READ_COUNT = 500  # entries per XREAD
COMMAND_CONNECTIONS = 128
READER_CONNECTIONS = 4  # the follower's XREAD and the cancel subscription
WRITERS_KEPT = 10_000  # generations whose last appended id is kept (see `_written`)

_STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")

_KINDS = {kind.value: kind for kind in EventKind}


def _stream_id(value: str | None) -> tuple[int, int] | None:
    """A stream entry id as numbers; None when malformed (then it counts as none)."""
    if value is None or not _STREAM_ID.fullmatch(value):
        return None
    ms, _, seq = value.partition("-")
    return int(ms), int(seq)


def _raw_events(entries: Any) -> list[LogEvent]:
    """One stream's entries of a raw XREAD reply as events."""
    events = []
    for entry_id, flat in entries:
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        kind = _KINDS.get(fields["kind"]) or EventKind(fields["kind"])  # unknown: ValueError
        events.append(LogEvent(str(entry_id), kind, json.loads(fields["data"])))
    return events


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class RedisEventLog:
    """`EventLog` on Redis Streams; ids are stream entry ids like "1718000000000-0"."""

    def __init__(
        self, url: str, ttl: float = 3600, maxlen: int = 200_000, key_prefix: str = "hxchat"
    ) -> None:
        self._ttl = ttl
        self._prefix = key_prefix
        self._where = _where(url)
        name = re.sub(r"[^A-Za-z0-9:._-]", "_", key_prefix)
        self._commands = _client(url, f"{name}:commands", COMMAND_CONNECTIONS, COMMAND_TIMEOUT)
        self._readers = _client(
            url, f"{name}:readers", READER_CONNECTIONS, BLOCK_MS / 1000 + COMMAND_TIMEOUT
        )
        self._appends = Appends(
            self._stream, lambda gid: self._cancels.key(gid), maxlen, _ms(ttl), _ms(RUNNING_TTL)
        )
        # Per generation, the append whose reply never came (sent again first, next time)
        self._unsettled: dict[str, tuple[Any, ...]] = {}
        # Per generation this worker writes, the id of its last event in the stream
        self._last_written: dict[str, tuple[int, int]] = {}
        self._batched = Batched(self._commands.connection_pool, COMMAND_TIMEOUT)
        self._follower = Follower(
            self._readers.connection_pool,
            self._batched.call,
            _raw_events,
            BLOCK_MS,
            READ_COUNT,
            COMMAND_TIMEOUT,
        )
        self._cancels = CancelFlags(
            self._commands, self._readers, key_prefix, _ms(RUNNING_TTL), COMMAND_TIMEOUT
        )

    # -- keys -------------------------------------------------------------------------

    def _stream(self, generation_id: str) -> str:
        return f"{self._prefix}:gen:{generation_id}"

    # -- the log ----------------------------------------------------------------------

    async def create(self, generation_id: str) -> None:
        """Open an empty log, so that readers who come before the first event wait."""
        async with self._unavailable():
            await self._commands.set(
                f"{self._stream(generation_id)}:open", "1", px=_ms(RUNNING_TTL), nx=True
            )

    async def append(self, generation_id: str, kind: EventKind, data: Mapping[str, Any]) -> str:
        """Append one event and return its id; a final kind finishes the log.

        When Redis goes away before the reply, the event may or may not be in the
        stream: `AppendUncertain`. The next append of the generation sends it again
        first; its token makes it land once.
        """
        command, packed = self._appends.command(generation_id, kind, data)
        # One deadline for the whole call, a timer on each reply (no asyncio.timeout)
        deadline = self._batched.loop().time() + COMMAND_TIMEOUT
        try:
            try:
                earlier = self._unsettled.get(generation_id)
                if earlier is not None:
                    sent = await self._send_append(earlier, deadline)
                    self._written(generation_id, earlier, sent)
                    del self._unsettled[generation_id]
                self._unsettled[generation_id] = command
                try:
                    event_id = await self._send_append(command, deadline, packed)
                except redis_errors.ResponseError:  # refused: certainly not appended
                    del self._unsettled[generation_id]
                    raise
                del self._unsettled[generation_id]
                return self._written(generation_id, command, event_id, data)
            except Exception as exc:
                raise self._translated(exc)  # noqa: B904 (chained there)
        except BrokerUnavailable as exc:
            if self._unsettled.get(generation_id) is command:
                raise AppendUncertain(exc.detail) from exc
            raise

    def _written(
        self,
        generation_id: str,
        command: tuple[Any, ...],
        reply: str,
        data: Mapping[str, Any] | None = None,
    ) -> str:
        """An append of this worker is in the stream: its readers here get it from
        memory (`Follower.local`), not through the shared read. Its id, returned; a
        log that was already finished ignored it, and answers its final event's id.
        `data`: the event's data as given (else read back from the command's JSON)."""
        if reply.startswith(FINISHED):
            self._last_written.pop(generation_id, None)
            return reply[len(FINISHED) :]
        event_id = _stream_id(reply)
        kind_text, data_json = event_of(command)
        kind = _KINDS.get(kind_text)
        if event_id is None or kind is None:  # not an id of ours: left to the read
            return reply
        previous = self._last_written.get(generation_id, (0, 0))
        if kind.is_final:
            self._last_written.pop(generation_id, None)
        else:
            if len(self._last_written) >= WRITERS_KEPT:
                self._last_written.clear()  # only the local shortcut is lost meanwhile
            self._last_written[generation_id] = event_id
        event = LogEvent(reply, kind, json.loads(data_json) if data is None else plain(data))
        self._follower.local(self._stream(generation_id), previous, event, event_id)
        return reply

    async def _send_append(
        self, command: tuple[Any, ...], deadline: float, packed: bytes | None = None
    ) -> str:
        packed = packed_append(command) if packed is None else packed
        try:
            return str(await self._batched.call_packed(packed, deadline))
        except redis_errors.NoScriptError:  # a new or restarted Redis: send it whole
            return str(await self._batched.call("EVAL", APPEND, 4, *command, deadline=deadline))

    async def read_batch(
        self, generation_id: str, after: str | None, timeout: float
    ) -> list[LogEvent] | None:
        """Every event after the cursor (at most `READ_COUNT`), waiting up to `timeout`
        for the first one; after a quiet wait, checks that the log still exists.

        What this worker has seen of a followed stream comes from memory; otherwise one
        direct read, after which the stream is followed (redis_follow.py)."""
        key = self._stream(generation_id)
        cursor_text = after if after is not None and _stream_id(after) is not None else "0-0"
        cursor = _stream_id(cursor_text) or (0, 0)
        events = self._follower.known(key, cursor)
        if events:  # the usual case under load: no timer, no round trip
            return events
        loop = self._batched.loop()
        deadline = loop.time() + timeout
        limit = deadline + COMMAND_TIMEOUT  # what the whole call may take
        try:
            while True:
                if events is None:
                    events = await self._read_directly(key, cursor, cursor_text, limit)
                if events:
                    return events
                if self._follower.finished(key):
                    return None  # at (or past) the final event
                remaining = deadline - loop.time()
                if remaining <= loops.TIMER_SLACK:  # not a wait of less than libuv's 1 ms
                    break
                events = await self._follower.wait(key, cursor, remaining)
                if events is None:  # not followed, or nothing came in time
                    break
                if events:
                    return events
                events = self._follower.known(key, cursor)
        except Exception as exc:
            raise self._translated(exc)  # noqa: B904 (chained there)
        if await self.position(generation_id, cursor_text) is not Position.READABLE:
            return None
        return []

    async def _read_directly(
        self, key: str, cursor: tuple[int, int], cursor_text: str, deadline: float
    ) -> list[LogEvent]:
        """Events after the cursor, from Redis; then the stream is followed from what
        this read saw (unless it was cut at `READ_COUNT`: more are waiting)."""
        reply, newest = await self._batched.call_many(
            ("XREAD", "COUNT", READ_COUNT, "STREAMS", key, cursor_text),
            ("XREVRANGE", key, "+", "-", "COUNT", 1),
            deadline=deadline,
        )
        events = [event for _, raw in per_stream(reply) for event in _raw_events(raw)]
        if events:
            if len(events) < READ_COUNT:
                self._follower.follow(key, cursor, events)
            return events
        # Nothing after the cursor: everything after the stream's newest entry (or
        # after 0-0 while it has none) is known, whatever the cursor says. A cursor
        # ahead of the stream must not make the worker skip what others wait for.
        start = _stream_id(str(newest[0][0])) if newest else None
        self._follower.follow(key, start or (0, 0), [])
        return []

    async def position(self, generation_id: str, after: str | None = None) -> Position:
        """Where a reader with this cursor stands: missing, readable or at the end."""
        stream = self._stream(generation_id)
        async with self._unavailable(), self._commands.pipeline(transaction=False) as pipe:
            pipe.exists(stream, f"{stream}:open")
            pipe.get(f"{stream}:end")
            exists, end = await pipe.execute()
        if not exists:
            return Position.MISSING
        cursor, final = _stream_id(after), _stream_id(end)
        if final is not None and cursor is not None and cursor >= final:
            return Position.AT_END
        return Position.READABLE

    # -- cancel -----------------------------------------------------------------------

    async def request_cancel(self, generation_id: str) -> None:
        """Ask the worker that runs the generation, wherever it is, to stop it."""
        async with self._unavailable():
            await self._cancels.request(generation_id)

    async def wait_cancelled(self, generation_id: str) -> None:
        """Return once a cancel was requested (also one requested before this call);
        survives a Redis outage."""
        await self._cancels.wait(generation_id)

    # -- lifecycle --------------------------------------------------------------------

    async def ping(self) -> None:
        """Raise `BrokerUnavailable` unless Redis answers."""
        async with self._unavailable():
            await self._commands.ping()

    async def close(self) -> None:
        """Stop the cancel subscription and close both connection pools."""
        await self._cancels.close()
        await self._follower.close()
        await self._batched.close()
        await self._readers.aclose()
        await self._commands.aclose()

    # -- errors -----------------------------------------------------------------------

    @asynccontextmanager
    async def _unavailable(self, timeout: float = COMMAND_TIMEOUT) -> AsyncIterator[None]:
        """Bound one call in time; turn a lost or refused connection into `BrokerUnavailable`."""
        try:
            async with asyncio.timeout(timeout):
                yield
        except Exception as exc:
            raise self._translated(exc)  # noqa: B904 (chained there)

    def _translated(self, exc: Exception) -> Exception:
        """A lost or refused connection as `BrokerUnavailable` caused by `exc`; anything
        else as it is."""
        translated = self._translation(exc)
        if translated is not None:
            translated.__cause__ = exc
            return translated
        return exc

    def _translation(self, exc: Exception) -> BrokerUnavailable | None:
        if isinstance(exc, redis_errors.AuthenticationError):
            return BrokerUnavailable(self._sentence("refused the credentials"))
        if isinstance(exc, redis_errors.BusyLoadingError):
            return BrokerUnavailable(self._sentence("is still loading its data"))
        if isinstance(exc, redis_errors.TimeoutError | TimeoutError):
            return BrokerUnavailable(self._sentence("did not answer in time"))
        if isinstance(exc, redis_errors.ConnectionError | OSError):
            return BrokerUnavailable(self._sentence("cannot be reached"))
        if isinstance(exc, redis_errors.ResponseError):
            if TOO_MANY in str(exc):
                return BrokerUnavailable("This answer has more events than the event log can hold.")
            return BrokerUnavailable(self._sentence("answered with an error"))
        return None

    def _sentence(self, problem: str) -> str:
        return f"The event broker (Redis at {self._where}) {problem}; please try again in a moment."


def _client(url: str, name: str, size: int, wait: float) -> Redis:
    """A client on a pool of its own: at most `size` connections, `wait` s to get one."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=size,
        timeout=wait,
        client_name=name,  # shows in CLIENT LIST
        decode_responses=True,
        socket_connect_timeout=3.0,
        # No socket timeout: on Python 3.11 redis-py then sends through asyncio.wait_for,
        # which swallows a cancellation that races the send (CPython gh-86296), e.g.
        # a stream closed by its browser. asyncio.timeout around each call bounds it.
        socket_timeout=None,
        health_check_interval=30,
        # A few quick retries absorb a dropped connection (Redis restarted); an outage
        # is reported within a couple of seconds instead of after redis-py's ten.
        retry=Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), 3),
    )
    return Redis.from_pool(pool)


def _where(url: str) -> str:
    """Host and port (or socket path) of a Redis URL, never its user or password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path or "a local socket"
    try:
        port = parts.port or 6379
    except ValueError:
        port = 6379
    return f"{parts.hostname or 'localhost'}:{port}"
