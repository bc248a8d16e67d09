"""The event log's promises, checked on both implementations with one suite.

Every test that takes `make_log` runs on the in-process log and on Redis Streams (the
latter when HXCHAT_TEST_REDIS_URL is set; CI sets it). Each Redis test uses its own
key prefix and deletes its keys at the end.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import secrets
import tracemalloc
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis.asyncio import Redis

from hxchat.broker import memory as memory_module
from hxchat.broker import redis_follow
from hxchat.broker.base import EventLog, Position
from hxchat.broker.factory import build_event_log
from hxchat.broker.memory import MemoryEventLog
from hxchat.broker.redis_streams import RedisEventLog
from hxchat.config import Settings
from hxchat.domain import EventKind, LogEvent
from hxchat.errors import AppendUncertain, BrokerUnavailable
from tests.helpers import eventually, redis_cut_off

REDIS_URL = os.environ.get("HXCHAT_TEST_REDIS_URL")
MakeLog = Callable[..., EventLog]
DELTA, DONE, ERROR = EventKind.DELTA, EventKind.DONE, EventKind.ERROR


def need_redis() -> str:
    if REDIS_URL:
        return REDIS_URL
    if os.environ.get("HXCHAT_TEST_REQUIRE_SERVICES"):
        pytest.fail("HXCHAT_TEST_REQUIRE_SERVICES is set but HXCHAT_TEST_REDIS_URL is not")
    pytest.skip("set HXCHAT_TEST_REDIS_URL=redis://127.0.0.1:6379/0 to test the Redis log")


@pytest.fixture
def prefix() -> str:
    return f"hxtest-{secrets.token_hex(6)}"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make_log(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[MakeLog]:
    """Builds logs of one kind (ttl and event cap as given) and cleans up after them."""
    url = need_redis() if request.param == "redis" else None
    made: list[EventLog] = []

    def make(*, ttl: float = 60, cap: int = 10_000) -> EventLog:
        log: EventLog
        if url is None:
            log = MemoryEventLog(ttl=ttl, max_events=cap)
        else:
            log = RedisEventLog(url, ttl=ttl, maxlen=cap, key_prefix=prefix)
        made.append(log)
        return log

    yield make
    for log in made:
        await log.close()
    if url is not None:
        await delete_keys(url, prefix)


async def delete_keys(url: str, prefix: str) -> None:
    client = Redis.from_url(url)
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def log(make_log: MakeLog) -> EventLog:
    return make_log()


def order(event_id: str) -> tuple[int, ...]:
    """Sort key for both id shapes ("7" and "1718000000000-3")."""
    return tuple(int(part) for part in event_id.split("-"))


async def follow(
    log: EventLog, generation_id: str, after: str | None = None
) -> AsyncIterator[LogEvent]:
    """A reader as the streams are one: events after the cursor (all without one), then
    live ones, ending after the final event, or at once when the log is missing or the
    cursor is at its end."""
    if await log.position(generation_id, after) is not Position.READABLE:
        return
    while True:
        batch = await log.read_batch(generation_id, after, 5)
        if batch is None:
            return
        for event in batch:
            yield event
            if event.kind.is_final:
                return
        if batch:
            after = batch[-1].id


async def collect(log: EventLog, gen: str, after: str | None = None) -> list[LogEvent]:
    async with asyncio.timeout(10):
        return [event async for event in follow(log, gen, after)]


async def write(log: EventLog, gen: str, count: int, final: EventKind = DONE) -> list[str]:
    ids = [await log.append(gen, DELTA, {"text": f"w{i} "}) for i in range(count)]
    ids.append(await log.append(gen, final, {"message_id": 1, "status": "complete"}))
    return ids


# -- order, replay, resume -------------------------------------------------------------


async def test_ids_are_monotonic_and_replay_returns_everything(log: EventLog) -> None:
    await log.create("g")
    ids = await write(log, "g", 30)
    assert sorted(ids, key=order) == ids and len(set(ids)) == len(ids)
    events = await collect(log, "g")
    assert [e.id for e in events] == ids
    assert [e.kind for e in events] == [DELTA] * 30 + [DONE]
    assert "".join(e.data["text"] for e in events[:-1]).startswith("w0 w1 w2 ")
    assert events[-1].data == {"message_id": 1, "status": "complete"}


async def test_resume_after_any_cursor_gets_each_later_event_once(log: EventLog) -> None:
    ids = await write(log, "g", 12)
    for index, cursor in enumerate(ids):
        assert [e.id for e in await collect(log, "g", cursor)] == ids[index + 1 :]


@pytest.mark.parametrize("seed", range(6))
async def test_reconnecting_reader_follows_a_live_writer_exactly(log: EventLog, seed: int) -> None:
    rng = random.Random(seed)
    await log.create("g")
    written: list[LogEvent] = []

    async def writer() -> None:
        for i in range(40):
            data = {"text": f"{seed}:{i}"}
            written.append(LogEvent(await log.append("g", DELTA, data), DELTA, data))
            await asyncio.sleep(rng.choice([0, 0, 0.001, 0.003]))  # a writer's uneven pace
        written.append(LogEvent(await log.append("g", ERROR, {"message": "x"}), ERROR, {}))

    async def reader() -> list[LogEvent]:
        seen: list[LogEvent] = []
        cursor: str | None = None
        while not seen or not seen[-1].kind.is_final:
            budget = rng.randint(1, 7)  # reconnect after this many events
            stream = cast("AsyncGenerator[LogEvent, None]", follow(log, "g", cursor))
            async with aclosing(stream):
                async for event in stream:
                    seen.append(event)
                    cursor = event.id
                    budget -= 1
                    if budget == 0:
                        break
        return seen

    seen, _ = await asyncio.wait_for(asyncio.gather(reader(), writer()), 20)
    assert [(e.id, e.kind) for e in seen] == [(e.id, e.kind) for e in written]
    assert [e.data.get("text") for e in seen[:-1]] == [f"{seed}:{i}" for i in range(40)]


async def test_batches_follow_a_live_writer_exactly(log: EventLog) -> None:
    """`read_batch` (what the streams use): each event once and in order, in batches,
    [] after a quiet wait, None once the log is missing."""
    await log.create("g")
    assert await log.read_batch("g", None, 0) == []
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await log.read_batch("g", None, 0.2) == []
    assert loop.time() - began >= 0.15  # it waited for the first event
    written = await write(log, "g", 5, final=EventKind.DELTA)
    got: list[LogEvent] = []
    while len(got) < len(written):  # Redis hands the newest events out a moment later
        batch = await log.read_batch("g", got[-1].id if got else None, 1)
        assert batch  # something came within the second
        got += batch
    assert [e.id for e in got] == written
    waiting = asyncio.create_task(log.read_batch("g", written[-1], 5))
    await asyncio.sleep(0.1)  # time enough to return (wrongly) early
    assert not waiting.done()
    final = await log.append("g", DONE, {"message_id": 1, "status": "complete"})
    batch = await asyncio.wait_for(waiting, 5)
    assert batch is not None and [(e.id, e.kind) for e in batch] == [(final, DONE)]
    assert await log.read_batch("g", written[1], 0) == await collect(log, "g", written[1])
    assert await log.read_batch("never-created", None, 0.1) is None


async def test_a_cursor_from_the_future_holds_up_no_other_reader(log: EventLog) -> None:
    await log.create("g")
    ahead = "99999999999999-0" if isinstance(log, RedisEventLog) else "99999999"
    dreamer = asyncio.create_task(log.read_batch("g", ahead, 1))
    await asyncio.sleep(0.1)  # it is waiting
    reader = asyncio.create_task(log.read_batch("g", None, 3))
    await asyncio.sleep(0.1)  # both are waiting when the event comes
    loop = asyncio.get_running_loop()
    began = loop.time()
    first = await log.append("g", DELTA, {"text": "a"})
    batch = await reader
    assert batch is not None and [e.id for e in batch] == [first]
    assert loop.time() - began < 1
    assert await dreamer == []


async def test_reader_that_comes_before_the_first_event_waits(log: EventLog) -> None:
    await log.create("g")
    early = asyncio.create_task(collect(log, "g"))
    await asyncio.sleep(0.2)  # time enough to end (wrongly) early
    assert not early.done()  # the log exists, so the reader waits instead of ending
    ids = await write(log, "g", 3)
    assert [e.id for e in await early] == ids


async def test_read_of_a_missing_log_ends_at_once(log: EventLog) -> None:
    assert await collect(log, "never-created") == []
    assert await collect(log, "never-created", "5") == []


async def test_many_concurrent_readers_all_get_everything(log: EventLog) -> None:
    await log.create("g")
    readers = [asyncio.create_task(collect(log, "g")) for _ in range(40)]
    await asyncio.sleep(0.05)  # they wait before the first event
    ids = []
    for i in range(25):
        ids.append(await log.append("g", DELTA, {"text": str(i)}))
        if i % 5 == 0:
            await asyncio.sleep(0.005)  # the readers catch up now and then
    ids.append(await log.append("g", DONE, {"message_id": 1, "status": "stopped"}))
    for result in await asyncio.gather(*readers):
        assert [e.id for e in result] == ids


async def test_live_read_ends_after_error(log: EventLog) -> None:
    await log.create("g")
    reader = asyncio.create_task(collect(log, "g"))
    await log.append("g", DELTA, {"text": "partial"})
    await log.append("g", ERROR, {"message": "The model did not answer."})
    events = await reader
    assert [e.kind for e in events] == [DELTA, ERROR]
    assert events[-1].data == {"message": "The model did not answer."}


@pytest.mark.parametrize("cursor", ["garbage", "", "1.5", "-1", "1-2-3", "12-ab", "\u0661"])
async def test_malformed_cursor_counts_as_none(log: EventLog, cursor: str) -> None:
    ids = await write(log, "g", 3)
    assert [e.id for e in await collect(log, "g", cursor)] == ids
    assert await log.position("g", cursor) is Position.READABLE


async def test_position(log: EventLog) -> None:
    assert await log.position("g") is Position.MISSING
    await log.create("g")
    assert await log.position("g") is Position.READABLE
    first = await log.append("g", DELTA, {"text": "a"})
    assert await log.position("g", first) is Position.READABLE  # more will come
    final = await log.append("g", DONE, {"message_id": 1, "status": "complete"})
    assert await log.position("g") is Position.READABLE
    assert await log.position("g", first) is Position.READABLE
    assert await log.position("g", final) is Position.AT_END
    assert await collect(log, "g", final) == []


async def test_a_finished_log_takes_no_more_events(log: EventLog) -> None:
    ids = await write(log, "g", 2)
    assert await log.append("g", ERROR, {"message": "late"}) == ids[-1]
    assert await log.append("g", DELTA, {"text": "late"}) == ids[-1]
    assert [e.id for e in await collect(log, "g")] == ids


async def test_event_cap_refuses_more_but_accepts_the_final_event(make_log: MakeLog) -> None:
    log = make_log(cap=5)
    ids = [await log.append("g", DELTA, {"text": str(i)}) for i in range(5)]
    with pytest.raises(BrokerUnavailable, match="more events"):
        await log.append("g", DELTA, {"text": "one too many"})
    ids.append(await log.append("g", ERROR, {"message": "The answer was too long."}))
    assert [e.id for e in await collect(log, "g")] == ids


async def test_finished_log_expires_after_ttl_running_one_does_not(make_log: MakeLog) -> None:
    log = make_log(ttl=0.3)
    await write(log, "done", 2)
    await log.create("running")
    await log.append("running", DELTA, {"text": "still going"})
    assert await log.position("done") is Position.READABLE

    async def expired() -> None:
        assert await log.position("done") is Position.MISSING

    await eventually(expired, within=5)
    assert await collect(log, "done") == []
    assert await log.position("running") is Position.READABLE


# -- cancel ----------------------------------------------------------------------------


async def test_cancel_requested_before_the_wait_is_seen(log: EventLog) -> None:
    await log.create("g")
    await log.request_cancel("g")
    await asyncio.wait_for(log.wait_cancelled("g"), 5)


async def test_cancel_requested_while_waiting_stops_only_that_generation(log: EventLog) -> None:
    await log.create("a")
    await log.create("b")
    wait_a = asyncio.create_task(log.wait_cancelled("a"))
    wait_b = asyncio.create_task(log.wait_cancelled("b"))
    await asyncio.sleep(0.2)  # time enough to end (wrongly) early
    assert not wait_a.done()
    await log.request_cancel("a")
    await asyncio.wait_for(wait_a, 5)
    await asyncio.sleep(0.1)  # time enough for a wrong wake-up of b
    assert not wait_b.done()
    wait_b.cancel()
    with pytest.raises(asyncio.CancelledError):
        await wait_b


async def test_a_closed_stream_or_a_finished_runner_stops_waiting_at_any_moment(
    log: EventLog,
) -> None:
    """Task cancellation is never swallowed (on Python 3.11 an asyncio.wait_for in
    redis-py's send path did, when a socket timeout was set)."""
    await log.create("g")
    for steps in range(16):
        for waiter in (collect(log, "g"), log.wait_cancelled("g")):
            task = asyncio.create_task(waiter)
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.wait([task], timeout=3)
            assert task.cancelled(), f"still running after cancel at step {steps}"
    first = await log.append("g", DONE, {"message_id": 1, "status": "complete"})
    assert [e.id for e in await collect(log, "g")] == [first]


# -- the in-process log's bounds ---------------------------------------------------------


async def test_memory_evicts_oldest_finished_logs_never_running_ones() -> None:
    log = MemoryEventLog(max_logs=3)
    for gen in ("a", "b", "c"):
        await log.create(gen)
    await write(log, "b", 1)
    await write(log, "a", 1)  # finished after b: b is the oldest finished log
    await log.create("d")
    assert await log.position("b") is Position.MISSING
    assert await log.position("a") is Position.READABLE
    await log.create("e")
    assert await log.position("a") is Position.MISSING
    with pytest.raises(BrokerUnavailable, match="Too many answers"):
        await log.create("f")  # c, d and e are all still running
    with pytest.raises(BrokerUnavailable):
        await log.append("f", DELTA, {"text": "x"})
    for gen in ("c", "d", "e"):
        assert await log.position(gen) is Position.READABLE


def traced_bytes() -> int:
    """Bytes still held that were allocated with memory.py on the stack."""
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, memory_module.__file__, all_frames=True)]
    )
    return sum(stat.size for stat in snapshot.statistics("filename"))


async def test_memory_holds_nothing_per_read_or_per_cancel() -> None:
    log = MemoryEventLog(max_logs=20)
    for gen in range(10):
        await write(log, str(gen), 5)

    async def reads(count: int) -> None:
        for i in range(count):
            gen = str(i % 10)
            assert len(await collect(log, gen, str(i % 4))) == 6 - i % 4
            await log.position(gen, "3")

    async def cancels(start: int, count: int) -> None:
        for i in range(start, start + count):
            await log.request_cancel(f"unknown-{i}")

    tracemalloc.start(25)
    try:
        await reads(100)
        await cancels(0, 100)
        before = traced_bytes()  # bounded state has turned over once, under tracing
        await reads(1_000)
        await cancels(100, 1_000)
        after = traced_bytes()
    finally:
        tracemalloc.stop()
    assert after - before < 4_000, f"{after - before} bytes more after 1,000 reads and cancels"
    # Only the newest cancel flags of unknown generations are kept.
    await asyncio.wait_for(log.wait_cancelled("unknown-1099"), 1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(log.wait_cancelled("unknown-0"), 0.1)


async def test_memory_close_ends_waiting_readers() -> None:
    log = MemoryEventLog()
    await log.create("g")
    reader = asyncio.create_task(collect(log, "g"))
    await asyncio.sleep(0.05)  # it is waiting
    await log.close()
    assert await reader == []


# -- Redis only --------------------------------------------------------------------------


@pytest.fixture
async def worker(prefix: str) -> AsyncIterator[Callable[[], RedisEventLog]]:
    """Builds RedisEventLog instances on one prefix: each one stands for a worker."""
    url = need_redis()
    made: list[RedisEventLog] = []

    def make() -> RedisEventLog:
        made.append(RedisEventLog(url, key_prefix=prefix))
        return made[-1]

    yield make
    for log in made:
        await log.close()
    await delete_keys(url, prefix)


@pytest.fixture
async def admin() -> AsyncIterator[Redis]:
    client = Redis.from_url(need_redis(), decode_responses=True)
    yield client
    await client.aclose()


@pytest.mark.redis
async def test_cancel_reaches_another_worker(worker: Callable[[], RedisEventLog]) -> None:
    runner, web = worker(), worker()
    waiting = asyncio.create_task(runner.wait_cancelled("g"))
    await asyncio.sleep(0.2)  # subscribed, and time enough to end (wrongly) early
    assert not waiting.done()
    await web.request_cancel("g")
    await asyncio.wait_for(waiting, 5)
    await web.request_cancel("h")  # requested before the other worker waits
    await asyncio.wait_for(runner.wait_cancelled("h"), 5)


@pytest.mark.redis
async def test_cancel_without_a_pubsub_message_is_found_by_polling(
    worker: Callable[[], RedisEventLog], admin: Redis, prefix: str
) -> None:
    waiting = asyncio.create_task(worker().wait_cancelled("g"))
    await asyncio.sleep(0.2)  # it is waiting (and subscribed) when the flag is set
    await admin.set(f"{prefix}:cancel:g", "1", ex=60)  # as if the message was lost
    await asyncio.wait_for(waiting, 6)


@pytest.mark.redis
async def test_recovers_after_its_connections_are_killed(
    worker: Callable[[], RedisEventLog], admin: Redis, prefix: str
) -> None:
    log, other = worker(), worker()
    waiting = asyncio.create_task(log.wait_cancelled("g"))
    first = await log.append("g", DELTA, {"text": "a"})

    async def connected() -> list[str]:
        clients = await admin.client_list()
        ours = [c["id"] for c in clients if c["name"].startswith(f"{prefix}:")]
        assert len(ours) >= 2, ours  # its commands and its subscription
        return ours

    ours = await eventually(connected)
    for client_id in ours:
        await admin.client_kill_filter(_id=client_id)
    second = await log.append("g", DONE, {"message_id": 1, "status": "complete"})
    assert [e.id for e in await collect(log, "g")] == [first, second]
    await log.ping()
    await other.request_cancel("g")
    await asyncio.wait_for(waiting, 6)


@pytest.mark.redis
async def test_appends_survive_a_flushed_script_cache(
    worker: Callable[[], RedisEventLog], admin: Redis
) -> None:
    log = worker()
    first = await log.append("g", DELTA, {"text": "a"})
    await admin.script_flush()  # as after a restart of Redis
    second = await log.append("g", DONE, {"message_id": 1, "status": "complete"})
    assert [e.id for e in await collect(log, "g")] == [first, second]


@pytest.mark.redis
async def test_concurrent_writers_lose_and_double_nothing_when_connections_drop(
    worker: Callable[[], RedisEventLog], admin: Redis, prefix: str
) -> None:
    """Appends of many generations share round trips; a connection killed under them
    is reconnected and what had no reply yet is sent again, exactly once."""
    log = worker()

    async def writer(gen: str) -> list[str]:
        ids = []
        for i in range(60):
            ids.append(await log.append(gen, DELTA, {"text": f"w{i} "}))
            await asyncio.sleep(random.uniform(0, 0.004))
        ids.append(await log.append(gen, DONE, {"message_id": 1, "status": "complete"}))
        return ids

    async def killer() -> None:
        for _ in range(4):
            await asyncio.sleep(0.05)  # while the writers write
            for client in await admin.client_list():
                if client["name"] == f"{prefix}:commands":
                    await admin.client_kill_filter(_id=client["id"])

    gens = [f"g{n}" for n in range(20)]
    written, _ = await asyncio.gather(asyncio.gather(*(writer(g) for g in gens)), killer())
    for gen, ids in zip(gens, written, strict=True):
        events = await collect(log, gen)
        assert [e.id for e in events] == ids
        assert "".join(e.data.get("text", "") for e in events) == "".join(
            f"w{i} " for i in range(60)
        )


@pytest.mark.redis
async def test_live_readers_of_a_worker_share_one_connection(
    worker: Callable[[], RedisEventLog], admin: Redis, prefix: str
) -> None:
    """Fifty readers on one worker wait on one XREAD; a stream followed while that read
    is blocked joins it at once, not after the block runs out."""
    log, writer = worker(), worker()
    for n in range(50):
        await writer.create(f"g{n}")
    readers = [asyncio.create_task(collect(log, f"g{n}")) for n in range(50)]
    await asyncio.sleep(0.3)  # all of them waiting, the shared read blocked
    names = [c["name"] for c in await admin.client_list()]
    assert names.count(f"{prefix}:readers") == 1

    await writer.create("late")
    late = asyncio.create_task(collect(log, "late"))
    await asyncio.sleep(0.1)  # it is waiting, while the shared read is blocked
    began = asyncio.get_running_loop().time()
    ids = await write(writer, "late", 2)
    assert [e.id for e in await late] == ids
    assert asyncio.get_running_loop().time() - began < 1  # the block is 5 s

    written = [await write(writer, f"g{n}", 3) for n in range(50)]
    assert [[e.id for e in got] for got in await asyncio.gather(*readers)] == written


@pytest.mark.redis
async def test_a_redis_user_with_only_the_documented_commands_is_enough(
    admin: Redis, prefix: str
) -> None:
    """A user with only the commands docs/deployment.md lists, so without CLIENT ID /
    CLIENT UNBLOCK (which some managed services and ACLs refuse): the shared read
    blocks briefly instead, and a stream followed meanwhile still joins it in time."""
    user = f"{prefix}-limited"
    commands = "xadd xread xrevrange xlen eval evalsha set get exists pexpire multi exec"
    commands += " publish subscribe ping hello client|setname"
    allowed = [f"+{command}" for command in commands.split()]
    await admin.acl_setuser(  # ACL SETUSER user on >pw ~* &* +xadd …
        user, enabled=True, passwords=["+pw"], keys=["*"], channels=["*"], commands=allowed
    )
    parts = urlsplit(need_redis())
    url = urlunsplit(parts._replace(netloc=f"{user}:pw@{parts.hostname}:{parts.port or 6379}"))
    log = RedisEventLog(url, key_prefix=prefix)
    try:
        await log.create("first")
        first = asyncio.create_task(collect(log, "first"))
        await asyncio.sleep(0.3)  # it is waiting, its read blocked
        await log.create("late")
        late = asyncio.create_task(collect(log, "late"))
        await asyncio.sleep(0.1)  # it is waiting too
        began = asyncio.get_running_loop().time()
        await admin.script_flush()  # its appends go by EVAL once
        ids = await write(log, "late", 2)
        assert [e.id for e in await late] == ids
        assert asyncio.get_running_loop().time() - began < 1
        written = await write(log, "first", 1)
        assert [e.id for e in await first] == written
        waiting = asyncio.create_task(log.wait_cancelled("late"))
        await log.request_cancel("late")
        await asyncio.wait_for(waiting, 5)
        assert await log.position("late", ids[-1]) is Position.AT_END
    finally:
        await log.close()
        await admin.acl_deluser(user)
        await delete_keys(need_redis(), prefix)


@pytest.mark.redis
@pytest.mark.parametrize("where", ["request", "reply"])
async def test_an_append_cut_off_lands_exactly_once_before_the_next(
    worker: Callable[[], RedisEventLog], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Sent again with its token while Redis stays away (4 s); after that the caller is
    told the outcome is unknown, and the next append sends it again first."""
    log = worker()
    first = await log.append("g", DELTA, {"text": "a"})
    with redis_cut_off(monkeypatch, where), pytest.raises(AppendUncertain):
        await log.append("g", DELTA, {"text": "b"})
    final = await log.append("g", DONE, {"message_id": 1, "status": "complete"})
    events = await collect(log, "g")
    assert [e.data.get("text") for e in events] == ["a", "b", None]
    assert [events[0].id, events[-1].id] == [first, final]


@pytest.mark.redis
async def test_a_reader_far_behind_still_gets_every_event(
    worker: Callable[[], RedisEventLog],
) -> None:
    """The worker keeps a window of each followed stream; a cursor older than that
    window is read from Redis, without a gap or a repeat."""
    log, writer = worker(), worker()
    await writer.create("g")
    live = asyncio.create_task(collect(log, "g"))
    ids = [await writer.append("g", DELTA, {"text": f"w{i} "}) for i in range(1_500)]
    behind = await log.read_batch("g", ids[10], 1)  # 1,489 events ago
    assert behind is not None and [e.id for e in behind] == ids[11:511]
    ids.append(await writer.append("g", DONE, {"message_id": 1, "status": "complete"}))
    assert [e.id for e in await live] == ids
    assert [e.id for e in await collect(log, "g", ids[3])] == ids[4:]


async def test_unreachable_redis_is_broker_unavailable_without_the_password() -> None:
    log = RedisEventLog("redis://hx:s3cret-pw@127.0.0.1:1/0", key_prefix="hxtest-down")
    try:
        attempts: list[Callable[[], Awaitable[object]]] = [
            log.ping,
            lambda: log.create("g"),
            lambda: log.append("g", DELTA, {"text": "a"}),
            lambda: log.position("g"),
            lambda: collect(log, "g"),
            lambda: log.request_cancel("g"),
        ]
        for attempt in attempts:
            with pytest.raises(BrokerUnavailable) as caught:
                await attempt()
            assert "127.0.0.1:1" in caught.value.detail
            assert "s3cret" not in str(caught.value) and "hx:" not in caught.value.detail
        waiting = asyncio.create_task(log.wait_cancelled("g"))
        await asyncio.sleep(0.3)  # time enough to fail (wrongly) at once
        assert not waiting.done()  # a waiter outlasts an outage instead of failing
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    finally:
        await log.close()


def test_factory_picks_the_log_from_the_settings() -> None:
    assert isinstance(build_event_log(Settings(redis_url=None)), MemoryEventLog)
    redis_log = build_event_log(Settings(redis_url="redis://127.0.0.1:6379/0"))
    assert isinstance(redis_log, RedisEventLog)
    asyncio.run(redis_log.close())


def test_an_append_is_packed_as_redis_py_would() -> None:
    """The Redis log packs its appends itself (the hot path): the same bytes as
    redis-py's packer, text as UTF-8 and numbers in decimal. (The shared XREAD, packed
    the same way, is what every test of a Redis reader goes through.)"""
    from redis.asyncio.connection import Connection

    from hxchat.broker import redis_append

    values = ("p:gen:g", "p:gen:g:open", "p:gen:g:end", "p:cancel:g", "delta")
    command = (*values, '{"text": "h\u00e9llo \u2603"}', "ab1f", "0", 200_000, 3_600_000, 1)
    ours = redis_append.packed_append(command)
    theirs = Connection().pack_command("EVALSHA", redis_append.APPEND_SHA, 4, *command)
    assert ours == b"".join(theirs)
    appends = redis_append.Appends(lambda g: f"p:gen:{g}", lambda g: f"p:cancel:{g}", 9, 8, 7)
    for kind in (EventKind.DELTA, EventKind.DONE, EventKind.DELTA):  # the keys made, kept, let go
        made, packed = appends.command("g", kind, {"text": "h\u00e9llo \u2603"})
        assert (
            made[:4] == values[:4] and made[4] == kind.value and made[7] == str(int(kind.is_final))
        )
        assert packed == b"".join(
            Connection().pack_command("EVALSHA", redis_append.APPEND_SHA, 4, *made)
        )


# -- readers on the writing worker (#13) -------------------------------------------------
# They get the writer's appends from memory as each is confirmed, not through the
# worker's shared XREAD (stalled here to show it). A stream whose writer here has gone
# quiet is read again, so an event someone else appended (a sweeper's final event,
# when this worker lost the answer) still reaches them.


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


@pytest.mark.redis
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


@pytest.mark.redis
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


@pytest.mark.redis
async def test_a_writer_whose_stream_has_a_gap_here_leaves_it_to_the_shared_read(
    worker: Callable[[], RedisEventLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When this worker does not know the event before its own append (it forgot what
    it wrote last, or followed the stream after it), the shared read brings the events
    while the writer goes on appending, not only once it has gone quiet."""
    monkeypatch.setattr(redis_follow, "FED", 0.2)
    here = worker()
    await here.create("g")
    reader = asyncio.create_task(read_all(here, "g"))
    await asyncio.sleep(0.2)
    await here.append("g", DELTA, {"text": "a "})
    here._last_written.clear()  # as after WRITERS_KEPT answers: the next has a gap
    got: list[LogEvent] = []

    async def watch() -> None:
        seen: str | None = None
        while True:
            batch = await here.read_batch("g", seen, 5) or []
            got.extend(batch)
            if batch:
                seen = batch[-1].id
            if any(e.data.get("text") == "b " for e in got):
                return

    watcher = asyncio.create_task(watch())
    await here.append("g", DELTA, {"text": "b "})
    for i in range(40):  # the writer goes on for 2 s, one delta a frame
        if watcher.done():
            break
        await asyncio.sleep(0.05)
        await here.append("g", DELTA, {"text": f"c{i} "})
    assert watcher.done()  # within the writing, not after a quiet second
    await here.append("g", DONE, {"message_id": 1, "status": "complete"})
    events = await reader
    assert [e.data.get("text") for e in events[:2]] == ["a ", "b "]
