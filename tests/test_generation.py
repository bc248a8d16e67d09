"""Generations outlive requests: stop, errors, shutdown, crash recovery, what the model sees."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from redis.asyncio import Redis

from hxchat.answer import Answer
from hxchat.broker.memory import MemoryEventLog
from hxchat.config import Settings
from hxchat.domain import Role, Source
from hxchat.errors import StoreUnavailable
from hxchat.metrics import Metrics
from hxchat.store.base import Checkpoint
from hxchat.store.migrate import upgrade
from hxchat.store.sql import open_store
from hxchat.supervision import LEASE_SECONDS, LeaseSupervisor
from tests.helpers import (
    REDIS_DB,
    ScriptedModel,
    client_for,
    events,
    eventually,
    new_conversation,
    on_redis,
    redis_cut_off,
    redis_test_url,
    running_app,
    send,
    under_way,
)


async def test_model_error_keeps_the_partial_answer(make_settings: Callable[..., Settings]) -> None:
    model = ScriptedModel(["one ", "two ", "three"], fail_after=2)
    from hxchat.app import create_app

    app = create_app(make_settings(), model=model)
    async with app.router.lifespan_context(app), client_for(app) as client:
        cid = await new_conversation(client)
        started = await send(client, cid, "go")
        _, evs = await events(client, started["events_url"])
        assert [e.event for e in evs] == ["delta", "delta", "error"]
        assert "HTTP 500" in evs[-1].json()["message"]
        message = (await client.get(f"/api/conversations/{cid}")).json()["messages"][-1]
        assert (message["status"], message["content"]) == ("error", "one two ")
        page = (await client.get(f"/c/{cid}")).text
        assert "The model did not answer" in page and "Retry" in page
    assert model.closed


async def test_what_the_model_sees_next_turn(make_settings: Callable[..., Settings]) -> None:
    from hxchat.app import create_app

    model = ScriptedModel(["first answer"])
    app = create_app(make_settings(), model=model)
    async with app.router.lifespan_context(app), client_for(app) as client:
        cid = await new_conversation(client)
        await events(client, (await send(client, cid, "q1"))["events_url"])
        model.fail_after = 0
        await events(client, (await send(client, cid, "q2"))["events_url"])  # ends in error
        model.fail_after = None
        model.hang = True
        third = await send(client, cid, "q3")
        await under_way(app, third["generation_id"])  # the answer's first word is out
        await client.post(f"/api/generations/{third['generation_id']}/cancel")
        await events(client, third["events_url"])
        model.hang = False
        await events(client, (await send(client, cid, "q4"))["events_url"])
    last = model.seen[-1]
    assert [(t.role, t.content) for t in last] == [
        (Role.USER, "q1"),
        (Role.ASSISTANT, "first answer"),
        (Role.USER, "q2"),  # its answer ended in error: left out
        (Role.USER, "q3"),
        (Role.ASSISTANT, "first answer"),  # stopped: kept as far as it got
        (Role.USER, "q4"),
    ]


async def test_shutdown_marks_running_answers_interrupted(
    make_settings: Callable[..., Settings],
) -> None:
    from hxchat.app import create_app

    settings = make_settings()
    model = ScriptedModel(["partial "])
    model.hang = True
    app = create_app(settings, model=model)
    async with app.router.lifespan_context(app), client_for(app) as client:
        cid = await new_conversation(client)
        started = await send(client, cid, "never finishes")
        await under_way(app, started["generation_id"])  # "partial " is out, then it hangs
    async with running_app(settings) as app2, client_for(app2) as client2:
        client2.cookies = client.cookies
        message = (await client2.get(f"/api/conversations/{cid}")).json()["messages"][-1]
        assert (message["status"], message["content"]) == ("interrupted", "partial ")
        status, evs = await events(client2, started["events_url"])
        assert status == 200
        assert [e.event for e in evs] == ["delta", "error"]
        page = (await client2.get(f"/c/{cid}")).text
        assert "Interrupted by a restart" in page


async def test_start_up_sweeps_what_a_crash_left(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    async with running_app(settings) as app, client_for(app) as client:
        cid = await new_conversation(client)
        owner_cookie = dict(client.cookies)
    # a crashed worker: a streaming answer whose lease is still valid, nobody running it
    store = await open_store(settings.database_url)
    try:
        owner = await _owner_of(settings.database_url, cid)
        lost = await store.start_turn(owner, cid, "lost", "crashed-gen", "dead-worker", 600)
        message_id = lost.assistant_message_id
        checkpoints = [
            Checkpoint("crashed-gen", message_id, 0, "half an "),
            Checkpoint("crashed-gen", message_id, 8, "ans"),
        ]
        assert not await store.checkpoint_many(checkpoints[:1], "dead-worker", 600)
        assert not await store.checkpoint_many(checkpoints[1:], "dead-worker", 600)
    finally:
        await store.close()
    async with running_app(settings) as app2, client_for(app2) as client2:
        client2.cookies.update(owner_cookie)
        message = (await client2.get(f"/api/conversations/{cid}")).json()["messages"][-1]
        assert (message["status"], message["content"]) == ("interrupted", "half an ans")
        again = await client2.post(f"/api/conversations/{cid}/messages", json={"content": "ok"})
        assert again.status_code == 202


class OneAnswer:
    """The lease supervisor's view of a worker writing one answer (`LiveAnswers`)."""

    worker_id = "worker-1"

    def __init__(self, answer: Answer) -> None:
        self.answer = answer

    def checkpoints(self) -> list[Checkpoint]:
        return [self.answer.checkpoint()]

    def checkpointed(self, checkpoints: Iterable[Checkpoint]) -> None:
        for checkpoint in checkpoints:
            self.answer.checkpointed(checkpoint)

    def abandon(self, generation_id: str) -> None:
        raise AssertionError(f"{generation_id} was not taken over")


async def test_a_checkpoint_the_store_lost_or_did_not_confirm_is_sent_again_once(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint writes only the text since the last one the store confirmed: after
    a failure the next one carries both, and after a commit whose reply was lost the
    text it sends again is not doubled."""
    settings = make_settings()
    await upgrade(settings.database_url)
    store = await open_store(settings.database_url)
    try:
        cid = await store.create_conversation("alice")
        started = await store.start_turn("alice", cid, "hi", "gen", "worker-1", LEASE_SECONDS)
        answer = Answer(started=started, owner="alice")
        supervisor = LeaseSupervisor(
            store=store, log=MemoryEventLog(), metrics=Metrics(), answers=OneAnswer(answer)
        )
        checkpoint_many = store.checkpoint_many
        outcome = "ok"

        async def flaky(*args: Any) -> set[str]:
            if outcome == "down":
                raise StoreUnavailable("The database is unavailable.")
            lost = await checkpoint_many(*args)
            if outcome == "reply lost":
                raise StoreUnavailable("The database connection was lost.")
            return lost

        async def stored() -> tuple[str, tuple[Source, ...]]:
            generation = await store.get_generation("gen")
            assert generation is not None
            return generation.content, generation.sources

        monkeypatch.setattr(store, "checkpoint_many", flaky)
        for outcome, words, expected in [
            ("down", "one ", ""),
            ("reply lost", "two ", "one two "),
            ("ok", "three ", "one two three "),
            ("ok", "", "one two three "),
            ("reply lost", "four ", "one two three four "),
            ("down", "five ", "one two three four "),
            ("ok", "six", "one two three four five six"),
        ]:
            answer.add_text(words)
            if outcome == "ok":
                await supervisor._checkpoint_all()
            else:
                with pytest.raises(StoreUnavailable):
                    await supervisor._checkpoint_all()
            assert await stored() == (expected, ())
        assert answer.checkpoint().text == ""

        found = Source("Docs", "https://example.com/")
        answer.add_sources([found])
        assert answer.checkpoint().sources == (found,)
        await supervisor._checkpoint_all()
        assert answer.checkpoint().sources is None  # stored: not sent again
        assert await stored() == ("one two three four five six", (found,))

        swept = await store.sweep_expired(include_live=True)
        assert [g.content for g in swept] == ["one two three four five six"]
    finally:
        await store.close()


async def _owner_of(database_url: str, cid: str) -> str:
    from sqlalchemy import text

    from hxchat.store.engine import make_engine

    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            query = text("select owner from conversations where id=:i")
            return str((await conn.execute(query, {"i": cid})).scalar_one())
    finally:
        await engine.dispose()


async def test_closing_the_stream_does_not_stop_the_answer(
    make_settings: Callable[..., Settings],
) -> None:
    async with running_app(make_settings(echo_delay_ms=20)) as app, client_for(app) as client:
        cid = await new_conversation(client)
        started = await send(client, cid, "a b c d e f g h i j")
        async with client.stream("GET", started["events_url"]) as response:
            async for _line in response.aiter_lines():
                break  # the reader goes away after the first line

        async def completed() -> None:  # with nobody reading
            message = (await client.get(f"/api/conversations/{cid}")).json()["messages"][-1]
            assert message["status"] == "complete", message

        await eventually(completed)
        _, evs = await events(client, started["events_url"])
        assert evs[-1].event == "done"
        assert "".join(e.json()["text"] for e in evs if e.event == "delta") == "a b c d e f g h i j"


async def test_a_turn_stored_for_a_cancelled_request_is_still_answered(
    make_settings: Callable[..., Settings],
) -> None:
    """The store completes a transaction whatever happens to its caller; so the runner
    must answer a turn even when the request that sent it is cancelled meanwhile,
    instead of leaving its answer `streaming` with a lease nobody renews."""
    async with running_app(make_settings()) as app, client_for(app) as client:
        cid = await new_conversation(client)
        runner = app.state.runner
        owner = (await client.get("/api/conversations")).request.headers["cookie"]
        owner = app.state.signer.unsign(owner.split("=", 1)[1]).decode()
        request = asyncio.create_task(runner.send(owner, cid, "still answered"))
        await asyncio.sleep(0)  # the turn is being stored
        request.cancel()

        async def answered() -> None:
            messages = (await client.get(f"/api/conversations/{cid}")).json()["messages"]
            assert [(m["role"], m["status"], m["content"]) for m in messages] == [
                ("user", "complete", "still answered"),
                ("assistant", "complete", "still answered"),
            ]

        await eventually(answered)


@pytest.mark.redis
async def test_stop_during_an_append_keeps_every_word_readers_got(
    make_settings: Callable[..., Settings],
) -> None:
    """On Redis an append takes a round trip, and a Stop may land in the middle of
    one: the word is on its way to the readers, so the kept answer must hold it too;
    and the text still waiting to be merged when the Stop comes goes to both."""
    model = ScriptedModel([f"w{i} " for i in range(5_000)])
    model.pause = 0.0005  # a fast model: many words to a frame, for seconds
    app = on_redis(make_settings, model=model)
    async with app.router.lifespan_context(app), client_for(app) as client:
        for attempt in range(10):
            cid = await new_conversation(client)
            started = await send(client, cid, "go")
            await asyncio.sleep(0.02 + attempt * 0.005)  # Stop at a different moment each time
            stop = await client.post(f"/api/generations/{started['generation_id']}/cancel")
            assert stop.status_code == 202
            _, evs = await events(client, started["events_url"])
            assert evs[-1].json()["status"] == "stopped"
            shown = "".join(e.json()["text"] for e in evs if e.event == "delta")
            message = (await client.get(f"/api/conversations/{cid}")).json()["messages"][-1]
            assert (message["status"], message["content"]) == ("stopped", shown)


@pytest.mark.redis
@pytest.mark.parametrize("where", ["request", "reply"])
async def test_an_answer_cut_off_by_redis_keeps_exactly_what_readers_get(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Redis away for longer than an append may wait, in the middle of a word: the
    answer ends in error, and the kept text is the text of the log, word for word."""
    app = on_redis(make_settings, echo_delay_ms=20)
    prompt = " ".join(f"w{i}" for i in range(200))  # 4 s of echo
    async with app.router.lifespan_context(app), client_for(app) as client:
        cid = await new_conversation(client)
        started = await send(client, cid, prompt)
        await under_way(app, started["generation_id"])
        with redis_cut_off(monkeypatch, where):
            await asyncio.sleep(5)  # longer than an append waits for Redis (4 s)

        async def ended() -> dict[str, Any]:
            message = (await client.get(f"/api/conversations/{cid}")).json()["messages"][-1]
            assert message["status"] != "streaming", message
            return dict(message)

        message = await eventually(ended)
        _, evs = await events(client, started["events_url"])
        assert evs[-1].event == "error" and message["status"] == "error"
        shown = "".join(e.json()["text"] for e in evs if e.event == "delta")
        assert message["content"] == shown
        assert 0 < len(shown) < len(prompt)


@pytest.mark.redis
async def test_a_short_redis_outage_goes_unnoticed(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis away for 2 s in the middle of an answer: the writer's appends wait for it,
    the reader's stream stays open, and the answer completes, every word once."""
    app = on_redis(make_settings, echo_delay_ms=20)
    prompt = " ".join(f"w{i}" for i in range(100))  # 2 s of echo
    async with app.router.lifespan_context(app), client_for(app) as client:
        cid = await new_conversation(client)
        started = await send(client, cid, prompt)
        reading = asyncio.create_task(events(client, started["events_url"]))
        await under_way(app, started["generation_id"])
        with redis_cut_off(monkeypatch, "request"):
            # The connections already open are cut too (the readers' shared XREAD).
            admin = Redis.from_url(redis_test_url(), decode_responses=True)
            for connection in await admin.client_list():
                if connection["name"].startswith("hxchat:") and connection["db"] == REDIS_DB:
                    await admin.client_kill_filter(_id=connection["id"])
            await admin.aclose()
            await asyncio.sleep(2)  # the outage: shorter than an append waits for Redis
        status, evs = await reading
        assert status == 200 and evs[-1].event == "done"
        assert "".join(e.json()["text"] for e in evs if e.event == "delta") == prompt
        message = (await client.get(f"/api/conversations/{cid}")).json()["messages"][-1]
        assert (message["status"], message["content"]) == ("complete", prompt)
