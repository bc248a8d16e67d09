"""The Redis log's readers on the worker that writes the answer (#13).

They get the writer's appends from memory as each is confirmed, not through the
worker's shared `XREAD`: these tests stall that read to show it. A stream whose writer
here has gone quiet is read again, so an event someone else appended (a sweeper's
final event, when this worker lost the answer) still reaches them.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from hxchat.broker import redis_follow
from hxchat.broker.redis_streams import RedisEventLog
from hxchat.domain import EventKind, LogEvent
from tests.helpers import redis_test_url

pytestmark = pytest.mark.redis

DELTA, DONE, ERROR = EventKind.DELTA, EventKind.DONE, EventKind.ERROR


@pytest.fixture
async def worker() -> AsyncIterator[Callable[[], RedisEventLog]]:
    """Builds RedisEventLog instances on one fresh prefix: each stands for a worker."""
    url, prefix = redis_test_url(), f"test-local-{secrets.token_hex(4)}"
    made: list[RedisEventLog] = []

    def make() -> RedisEventLog:
        made.append(RedisEventLog(url, key_prefix=prefix))
        return made[-1]

    yield make
    for log in made:
        await log.close()
    client = Redis.from_url(url)
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def read_all(log: RedisEventLog, gid: str) -> list[LogEvent]:
    """Every event to the final one, as a stream reads them (10 s at most)."""
    seen: list[LogEvent] = []
    async with asyncio.timeout(10):
        while not seen or not seen[-1].kind.is_final:
            batch = await log.read_batch(gid, seen[-1].id if seen else None, 5)
            assert batch is not None
            seen.extend(batch)
    return seen


def stall_shared_read(log: RedisEventLog, monkeypatch: pytest.MonkeyPatch) -> None:
    """This worker's shared XREAD never answers from now on."""

    async def never(_streams: Any) -> Any:
        await asyncio.Event().wait()

    monkeypatch.setattr(log._follower, "_read", never)


async def test_a_reader_on_the_writing_worker_gets_every_event_without_the_shared_read(
    worker: Callable[[], RedisEventLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    here, there = worker(), worker()
    stall_shared_read(here, monkeypatch)
    await here.create("g")
    local = asyncio.create_task(read_all(here, "g"))
    remote = asyncio.create_task(read_all(there, "g"))
    await asyncio.sleep(0.2)  # both readers wait for the first event
    ids = [await here.append("g", DELTA, {"text": f"w{i} "}) for i in range(50)]
    ids.append(await here.append("g", DONE, {"message_id": 1, "status": "complete"}))
    for reader in (local, remote):
        events = await reader
        assert [e.id for e in events] == ids
        assert "".join(str(e.data.get("text", "")) for e in events) == "".join(
            f"w{i} " for i in range(50)
        )
        assert events[-1].data == {"message_id": 1, "status": "complete"}


async def test_a_final_event_from_another_worker_reaches_readers_of_a_quiet_writer(
    worker: Callable[[], RedisEventLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer here stops (it lost the answer); a sweeper elsewhere ends the log.
    Once the writer has been quiet for `FED`, this worker's read follows the stream
    again and its reader gets the sweeper's final event."""
    monkeypatch.setattr(redis_follow, "FED", 0.2)
    here, sweeper = worker(), worker()
    await here.create("g")
    reader = asyncio.create_task(read_all(here, "g"))
    await asyncio.sleep(0.2)
    first = await here.append("g", DELTA, {"text": "one "})
    await asyncio.sleep(0.5)  # the shared read has gone on without the stream
    await sweeper.append("g", ERROR, {"message": "Interrupted."})
    events = await reader
    assert [e.kind for e in events] == [DELTA, ERROR]
    assert events[0].id == first
    # The writer's late append is ignored, and answers the final event's id.
    assert await here.append("g", DELTA, {"text": "late "}) == events[-1].id
