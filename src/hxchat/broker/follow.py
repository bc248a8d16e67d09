"""Following a generation's event log: the loop every stream reader runs, for any log.

Not to be confused with `broker/redis_follow.py`, the Redis log's one shared `XREAD`
per worker: this module sits above the `EventLog` protocol and is the same for the
in-memory and the Redis log.

A reader replays and then follows the log; it never drives the model, so a slow or
vanished client cannot stall a generation. It costs one wake-up per batch of events
and no task of its own: it asks the log for everything after its cursor
(`EventLog.read_batch`), waiting a few seconds at most, so the same loop also notices
silence: time for a `: ping` comment (after `PING_SECONDS`), or to ask the store whether
the answer ended without its final event reaching the log (every `QUIET_CHECK`). To a
reader an unreachable broker is silence too, asked again after `BROKER_RETRY`.

When a generation has no log (it expired, or never appeared), its events are made
again from the stored message (`rebuilt_events`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from hxchat import loops
from hxchat.broker.base import EventLog, Position
from hxchat.domain import EventKind, LogEvent, MessageStatus, Usage
from hxchat.errors import BrokerUnavailable, StoreUnavailable
from hxchat.store.base import Generation, Store

PING_SECONDS = 15
QUIET_CHECK = 5.0  # a stream quiet for this long asks the store whether the answer ended
BROKER_RETRY = 1.0  # seconds before a stream asks an unreachable broker again
REBUILT_DELTA_ID = "0"
REBUILT_END_ID = "end"


async def batches(
    log: EventLog,
    store: Store,
    generation_id: str,
    after: str | None,
    *,
    lifetime: float,
    interval: float = 0,
) -> AsyncIterator[list[LogEvent]]:
    """The log's events grouped by what is available at once (a replay comes as one
    big batch), at most one batch per `interval`; ends after the final event, or
    silently when `lifetime` runs out. An empty batch means "nothing for
    `PING_SECONDS`": time for a ping.

    A generation can end without its final event reaching the log (the broker was
    away when it ended, or its worker died between storing the end and appending it).
    So a stream that has been quiet asks the store, and when the store has said twice
    in a row that the answer is over, ends with the final event rebuilt from it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + lifetime
    quiet = min(QUIET_CHECK, PING_SECONDS)
    cursor = after
    next_frame = 0.0
    last_yield = loop.time()
    ended_in_store = False
    while True:
        # Coalescing sleeps first, then takes what came meanwhile at once: while an
        # answer streams, a frame costs one timer and no wake-up by the writer.
        delay = next_frame - loop.time()
        if delay > loops.TIMER_SLACK:  # a frame due within the timers' millisecond is due
            await asyncio.sleep(delay)
        remaining = deadline - loop.time()
        if remaining <= loops.TIMER_SLACK:
            return
        try:
            batch = await log.read_batch(generation_id, cursor, min(remaining, quiet))
        except BrokerUnavailable:
            # To the reader the broker's absence is silence: pings go on and the log is
            # asked again shortly. Not the store: what the log holds may be ahead of
            # what this reader got, and it resumes from there once the broker is back.
            await asyncio.sleep(min(BROKER_RETRY, remaining))
            if loop.time() - last_yield >= PING_SECONDS:
                last_yield = loop.time()
                yield []
            continue
        if batch is None:
            return
        if not batch:
            if loop.time() >= deadline:
                return
            stored = await _stored_end(store, generation_id)
            if stored is not None and ended_in_store:
                yield [stored]
                return
            ended_in_store = stored is not None
            if loop.time() - last_yield >= PING_SECONDS:
                last_yield = loop.time()
                yield batch
            continue
        ended_in_store = False
        yield batch  # nothing follows a final event in a log
        if batch[-1].kind.is_final:
            return
        cursor = batch[-1].id
        last_yield = loop.time()
        next_frame = last_yield + interval


async def _stored_end(store: Store, generation_id: str) -> LogEvent | None:
    """The final event as the store knows it, once the answer has ended there."""
    try:
        generation = await store.get_generation(generation_id)
    except StoreUnavailable:
        return None
    if generation is None or generation.status is MessageStatus.STREAMING:
        return None
    return rebuilt_events(generation)[-1]


async def wait_for_log_or_end(
    store: Store, log: EventLog, generation: Generation, lifetime: float
) -> Generation:
    """A generation that is streaming but has no log yet (being created, or its worker
    died): wait until its log appears or the store says it ended."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + lifetime
    while generation.status is MessageStatus.STREAMING and loop.time() < deadline:
        await asyncio.sleep(0.5)
        if await log.position(generation.id) is not Position.MISSING:
            break
        generation = await store.get_generation(generation.id) or generation
    return generation


def rebuilt_events(generation: Generation) -> list[LogEvent]:
    """A finished generation's events, made again from the stored message."""
    events = []
    if generation.content:
        events.append(LogEvent(REBUILT_DELTA_ID, EventKind.DELTA, {"text": generation.content}))
    if generation.sources:
        events.append(
            LogEvent(
                REBUILT_DELTA_ID,
                EventKind.TOOL_RESULT,
                {"name": "web_search", "sources": [s.as_json() for s in generation.sources]},
            )
        )
    end_id = generation.final_event_id or REBUILT_END_ID
    if generation.status in (MessageStatus.ERROR, MessageStatus.INTERRUPTED):
        message = generation.error or "The answer failed."
        events.append(LogEvent(end_id, EventKind.ERROR, {"message": message}))
    else:
        status = (
            generation.status.value
            if generation.status is not MessageStatus.STREAMING
            else MessageStatus.INTERRUPTED.value
        )
        usage = (generation.usage or Usage()).as_json()
        data = {"message_id": generation.message_id, "status": status, "usage": usage}
        events.append(LogEvent(end_id, EventKind.DONE, data))
    return events
