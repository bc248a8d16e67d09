"""Text deltas merged at the readers' pace: a fast model costs the event log a few
events a second, never delaying its first word, tool calls or sources, and losing no
word to a Stop, an error or the end of the answer."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Sequence

import httpx
import pytest
from fastapi import FastAPI

from hxchat import answering
from hxchat.app import create_app
from hxchat.broker.base import EventLog
from hxchat.broker.memory import MemoryEventLog
from hxchat.config import Settings
from hxchat.domain import AgentEvent, LogEvent, Source, TextDelta, ToolCall, ToolResult, Turn
from hxchat.pending import PendingText, next_frame
from hxchat.providers.base import ChatModel
from tests.helpers import ScriptedModel, client_for, events, new_conversation, on_redis, send

Script = Sequence[AgentEvent | asyncio.Event]


class GatedModel:
    """Yields its script; at an `asyncio.Event` in it, waits until the test sets it
    (a model that pauses right after a token, or after a tool call)."""

    name = "gated"

    def __init__(self, script: Script) -> None:
        self.script = script

    async def stream(
        self, history: Sequence[Turn], *, instructions: str = ""
    ) -> AsyncIterator[AgentEvent]:
        for item in self.script:
            if isinstance(item, asyncio.Event):
                await item.wait()
            else:
                yield item

    async def close(self) -> None:
        return None


def app_on(broker: str, make_settings: Callable[..., Settings], model: ChatModel) -> FastAPI:
    if broker == "redis":
        return on_redis(make_settings, model=model)
    return create_app(make_settings(), model=model)


async def read_log_until(
    log: EventLog, gid: str, enough: Callable[[list[LogEvent]], bool]
) -> list[LogEvent]:
    """The log's events from its start until `enough` says so (5 s at most)."""
    seen: list[LogEvent] = []
    async with asyncio.timeout(5):
        while not enough(seen):
            batch = await log.read_batch(gid, seen[-1].id if seen else None, 1.0)
            seen.extend(batch or [])
    return seen


def texts(evs: Sequence[LogEvent]) -> str:
    return "".join(str(e.data["text"]) for e in evs if e.kind.value == "delta")


async def stored(client: httpx.AsyncClient, cid: str) -> tuple[str, str]:
    message = (await client.get(f"/api/conversations/{cid}")).json()["messages"][-1]
    return message["status"], message["content"]


BROKERS = ["memory", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.mark.parametrize("broker", BROKERS)
async def test_a_burst_of_tokens_goes_to_the_log_as_a_few_events(
    make_settings: Callable[..., Settings], broker: str
) -> None:
    words = [f"w{i} " for i in range(500)]
    model = ScriptedModel(words)  # one word per turn of the loop: a burst
    app = app_on(broker, make_settings, model)
    async with app.router.lifespan_context(app), client_for(app) as client:
        cid = await new_conversation(client)
        started = await send(client, cid, "go")
        _, evs = await events(client, started["events_url"])
        deltas = [e.json()["text"] for e in evs if e.event == "delta"]
        assert "".join(deltas) == "".join(words)
        assert 2 <= len(deltas) <= 25  # the first word at once, then one per frame at most
        assert [e.event for e in evs] == ["delta"] * len(deltas) + ["done"]
        assert await stored(client, cid) == ("complete", "".join(words))


@pytest.mark.parametrize("broker", BROKERS)
async def test_a_tool_call_right_after_text_follows_it_at_once(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch, broker: str
) -> None:
    """Text waits for its frame, but never holds back a tool call or its sources: a
    frame of 30 s here, so any wait for the timer would show."""
    monkeypatch.setattr(answering, "PendingText", functools.partial(PendingText, interval=30.0))
    searched = asyncio.Event()
    source = Source("Example", "https://example.org/")
    model = GatedModel(
        [
            TextDelta("Let me "),
            TextDelta("look. "),
            ToolCall("web_search", {"query": "q"}),
            searched,
            ToolResult("web_search", (source,)),
            TextDelta("Found "),
            TextDelta("it."),
        ]
    )
    app = app_on(broker, make_settings, model)
    async with app.router.lifespan_context(app), client_for(app) as client:
        cid = await new_conversation(client)
        started = await send(client, cid, "search")
        gid = started["generation_id"]
        early = await read_log_until(
            app.state.log, gid, lambda seen: any(e.kind.value == "tool_call" for e in seen)
        )
        assert [(e.kind.value, e.data.get("text")) for e in early] == [
            ("delta", "Let me "),
            ("delta", "look. "),
            ("tool_call", None),
        ]
        searched.set()
        _, evs = await events(client, started["events_url"])
        assert [e.event for e in evs] == [
            "delta",
            "delta",
            "tool_call",
            "tool_result",
            "delta",
            "done",
        ]
        assert evs[4].json() == {"text": "Found it."}  # merged, and appended at the end
        conversation = (await client.get(f"/api/conversations/{cid}")).json()
        message = conversation["messages"][-1]
        assert (message["status"], message["content"]) == ("complete", "Let me look. Found it.")
        assert message["sources"] == [source.as_json()]


async def test_text_before_a_pause_reaches_readers_within_a_frame(
    make_settings: Callable[..., Settings],
) -> None:
    """The model stops right after a token: the timer appends it, not the next token."""
    resume = asyncio.Event()
    model = GatedModel([TextDelta("one "), TextDelta("two "), resume, TextDelta("three")])
    app = create_app(make_settings(), model=model)
    async with app.router.lifespan_context(app), client_for(app) as client:
        cid = await new_conversation(client)
        started = await send(client, cid, "go")
        early = await read_log_until(
            app.state.log, started["generation_id"], lambda seen: texts(seen) == "one two "
        )
        assert [e.data["text"] for e in early] == ["one ", "two "]
        resume.set()
        _, evs = await events(client, started["events_url"])
        assert [e.json().get("text") for e in evs] == ["one ", "two ", "three", None]
        assert await stored(client, cid) == ("complete", "one two three")


async def test_stop_during_a_burst_keeps_exactly_what_readers_got(
    make_settings: Callable[..., Settings],
) -> None:
    """Text waiting for its frame when the Stop comes is appended before `done`: the
    readers and the kept answer agree word for word."""
    words = [f"w{i} " for i in range(5_000)]
    model = ScriptedModel(words)
    model.pause = 0.0005  # a fast model: many words to a frame, for seconds
    app = create_app(make_settings(), model=model)
    async with app.router.lifespan_context(app), client_for(app) as client:
        for attempt in range(5):
            cid = await new_conversation(client)
            started = await send(client, cid, "go")
            await asyncio.sleep(0.05 + attempt * 0.013)
            stop = await client.post(f"/api/generations/{started['generation_id']}/cancel")
            assert stop.status_code == 202
            _, evs = await events(client, started["events_url"])
            assert evs[-1].json()["status"] == "stopped"
            shown = "".join(e.json()["text"] for e in evs if e.event == "delta")
            assert 0 < len(shown) < len("".join(words))
            assert await stored(client, cid) == ("stopped", shown)


async def test_an_answer_too_long_keeps_the_text_up_to_the_limit(
    make_settings: Callable[..., Settings],
) -> None:
    """The limit counts the text waiting for its frame too; what came before the cut
    is appended and kept."""
    model = ScriptedModel([f"w{i:03d} " for i in range(300)])  # 1,500 characters
    app = create_app(make_settings(max_answer_chars=1_000), model=model)
    async with app.router.lifespan_context(app), client_for(app) as client:
        cid = await new_conversation(client)
        started = await send(client, cid, "go")
        _, evs = await events(client, started["events_url"])
        shown = "".join(e.json()["text"] for e in evs if e.event == "delta")
        assert evs[-1].event == "error" and "1,000 characters" in evs[-1].json()["message"]
        assert shown == "".join(f"w{i:03d} " for i in range(200))
        assert await stored(client, cid) == ("error", shown)


async def test_a_timers_append_that_fails_ends_the_answer_as_readers_saw_it(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the in-memory log the merged text is appended by its timer; when the log
    refuses it (here: full after one event), the text goes back to the flush task,
    whose append fails as any does. The answer ends in error with what readers got."""
    monkeypatch.setattr(answering, "PendingText", functools.partial(PendingText, interval=0.3))
    go = asyncio.Event()
    model = GatedModel([TextDelta("one "), go, TextDelta("two "), asyncio.Event()])
    log = MemoryEventLog(max_events=1)
    app = create_app(make_settings(), model=model, log=log)
    async with app.router.lifespan_context(app), client_for(app) as client:
        cid = await new_conversation(client)
        started = await send(client, cid, "go")
        await read_log_until(log, started["generation_id"], lambda seen: bool(seen))
        go.set()  # "two " comes within the frame: its timer appends it, and fails
        _, evs = await events(client, started["events_url"])
        assert [(e.event, e.json().get("text")) for e in evs] == [
            ("delta", "one "),
            ("error", None),
        ]
        assert await stored(client, cid) == ("error", "one ")
    await log.close()


def test_merged_text_of_every_answer_is_due_on_shared_frame_boundaries() -> None:
    """Text taken at any moment of a frame is next due on the worker's frame clock: two
    answers that took theirs 20 ms apart append together (one turn of the loop, one
    Redis round trip), at least half a frame later; a timer that fires a little early
    on a boundary makes the next append due one whole frame on, not at once."""
    assert next_frame(100.001, 0.05) == next_frame(100.021, 0.05) == pytest.approx(100.05)
    assert next_frame(100.03, 0.05) == pytest.approx(100.1)  # 20 ms away: too soon
    assert next_frame(100.0995, 0.05) == pytest.approx(100.15)  # a timer 0.5 ms early
    for now in (0.0, 7.3, 12345.678):
        due = next_frame(now, 0.05)
        assert now + 0.025 <= due < now + 0.075 + 1e-9
