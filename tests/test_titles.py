"""Titles written by the model after the first answer (#12), and a conversation's
instructions in the system prompt (#10): through the real app against the scripted
OpenAI-compatible server (what the model was sent, what the conversation shows), and
Gemini's plain generate call against the scripted Gemini."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from hxchat.app import create_app
from hxchat.config import Settings
from hxchat.errors import ProviderError
from hxchat.providers.base import TITLE_PROMPT
from hxchat.providers.gemini import GeminiModel
from hxchat.titles import clean_title
from tests.helpers import ScriptedModel, client_for, events, eventually, new_conversation
from tests.helpers import ask as turns
from tests.scripted_gemini import Final, Raise, ScriptedGemini, request_texts
from tests.scripted_openai import Completion, Reply, Respond, ScriptedOpenAI, Status, Text

KEY = "sk-test-secret-key-0123456789"
QUESTION = "How do I add a column with Alembic on SQLite?"


def answer_or(title: Reply) -> Respond:
    """Streamed requests (answers) get an answer; the title request gets `title`."""
    return Respond(lambda body: Text(["Use ", "op.add_column."]) if body.get("stream") else title)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedOpenAI]:
    with ScriptedOpenAI([answer_or(Completion('"Alembic columns on *SQLite*."'))]) as s:
        monkeypatch.setenv("OPENAI_BASE_URL", s.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        yield s


@pytest.fixture
def make_app(
    make_settings: Callable[..., Settings], server: ScriptedOpenAI
) -> Callable[..., FastAPI]:
    def make(**overrides: Any) -> FastAPI:
        return create_app(make_settings(model="openai:scripted-model", search="none", **overrides))

    return make


@pytest.fixture
async def app(make_app: Callable[..., FastAPI]) -> AsyncIterator[FastAPI]:
    app = make_app()
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


async def ask(client: httpx.AsyncClient, cid: str, content: str = QUESTION) -> list[Any]:
    """Send a message and read its whole answer; its events."""
    response = await client.post(f"/api/conversations/{cid}/messages", json={"content": content})
    assert response.status_code == 202, response.text
    status, evs = await events(client, response.json()["events_url"])
    assert status == 200 and evs[-1].event == "done", evs
    return evs


async def title_of(client: httpx.AsyncClient, cid: str) -> str:
    return str((await client.get(f"/api/conversations/{cid}")).json()["title"])


async def settled(app: FastAPI, client: httpx.AsyncClient, cid: str) -> str:
    """The title once the model is no longer writing one."""
    owner = (await client.get("/api/me")).json()["id"]

    async def not_pending() -> None:
        state = await app.state.library.title_state(owner, cid)
        assert state is not None and not state.pending, state

    await eventually(not_pending)
    return await title_of(client, cid)


def title_requests(server: ScriptedOpenAI) -> list[dict[str, Any]]:
    return [body for body in server.bodies if not body.get("stream")]


async def test_the_model_titles_the_conversation_after_its_first_answer(
    app: FastAPI, client: httpx.AsyncClient, server: ScriptedOpenAI
) -> None:
    cid = await new_conversation(client)
    await ask(client, cid)
    assert await settled(app, client, cid) == "Alembic columns on SQLite"

    # One short request, not streamed, to the conversation's model, after the answer.
    [request] = title_requests(server)
    assert server.bodies[0].get("stream") is True and server.bodies[-1] is not None
    assert request["model"] == "scripted-model" and "tools" not in request
    assert request["messages"][0] == {"role": "system", "content": TITLE_PROMPT}
    assert QUESTION in request["messages"][1]["content"]
    assert "op.add_column." in request["messages"][1]["content"]
    listed = (await client.get("/api/conversations")).json()
    assert listed[0]["title"] == "Alembic columns on SQLite"

    # Later answers ask for no title.
    await ask(client, cid, "And on PostgreSQL?")
    assert len(title_requests(server)) == 1


@pytest.mark.parametrize(
    "title",
    [Status(500, f"failed with key {KEY}"), Status(401), Completion("Too late", delay=2.0)],
    ids=["error", "refused", "slow"],
)
async def test_a_failing_or_slow_model_keeps_the_first_message_title_and_the_answer(
    app: FastAPI,
    client: httpx.AsyncClient,
    server: ScriptedOpenAI,
    title: Reply,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.script = [answer_or(title)]
    app.state.runner.titles.timeout = 0.5
    cid = await new_conversation(client)
    caplog.set_level(logging.INFO)

    evs = await ask(client, cid)

    assert evs[-1].json()["status"] == "complete"
    assert await settled(app, client, cid) == QUESTION  # the first message's title
    conversation = (await client.get(f"/api/conversations/{cid}")).json()
    assert conversation["messages"][1]["content"] == "Use op.add_column."
    assert len(title_requests(server)) == 1
    assert "wrote no title" in caplog.text
    assert KEY not in caplog.text


async def test_the_answer_ends_before_a_slow_title_does(
    app: FastAPI, client: httpx.AsyncClient, server: ScriptedOpenAI
) -> None:
    """`done` comes while the model is still writing the title: had the answer waited
    for it, the title would be the model's by then."""
    server.script = [answer_or(Completion("A slow title", delay=2.0))]
    cid = await new_conversation(client)
    await ask(client, cid)
    assert await title_of(client, cid) == QUESTION
    assert await settled(app, client, cid) == "A slow title"


async def test_a_rename_while_the_model_writes_the_title_wins(
    app: FastAPI, client: httpx.AsyncClient, server: ScriptedOpenAI
) -> None:
    server.script = [answer_or(Completion("The model's title", delay=1.0))]
    cid = await new_conversation(client)
    await ask(client, cid)
    await eventually(lambda: len(title_requests(server)) == 1)
    renamed = await client.patch(f"/api/conversations/{cid}", json={"title": "Mine"})
    assert renamed.json()["title"] == "Mine"
    await eventually(lambda: len(server.requests) >= 2)
    assert await settled(app, client, cid) == "Mine"


async def test_a_conversation_named_before_its_first_message_asks_for_no_title(
    app: FastAPI, client: httpx.AsyncClient, server: ScriptedOpenAI
) -> None:
    cid = await new_conversation(client)
    await client.patch(f"/api/conversations/{cid}", json={"title": "Named first"})
    await ask(client, cid)
    assert await settled(app, client, cid) == "Named first"
    assert title_requests(server) == []


async def test_titles_first_message_asks_the_model_for_nothing(
    make_app: Callable[..., FastAPI], server: ScriptedOpenAI
) -> None:
    app = make_app(titles="first-message")
    async with app.router.lifespan_context(app), client_for(app) as client:
        cid = await new_conversation(client)
        await ask(client, cid)
        assert await settled(app, client, cid) == QUESTION
    assert title_requests(server) == []


async def test_the_echo_model_keeps_the_first_message_title(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings())
    async with app.router.lifespan_context(app), client_for(app) as client:
        cid = await new_conversation(client)
        await ask(client, cid, "Echo **this** please")
        assert await settled(app, client, cid) == "Echo this please"


# -- instructions (#10) ---------------------------------------------------------------


async def test_instructions_reach_the_system_prompt_of_later_answers(
    client: httpx.AsyncClient, server: ScriptedOpenAI
) -> None:
    cid = await new_conversation(client)
    await ask(client, cid, "First question")
    patched = await client.patch(
        f"/api/conversations/{cid}", json={"instructions": "Always answer in French."}
    )
    assert patched.status_code == 200
    await ask(client, cid, "Second question")
    await client.patch(f"/api/conversations/{cid}", json={"instructions": ""})
    await ask(client, cid, "Third question")

    systems = [body["messages"][0] for body in server.bodies if body.get("stream")]
    assert [s["role"] for s in systems] == ["system"] * 3
    assert "Always answer in French." not in systems[0]["content"]
    assert systems[1]["content"].endswith("follow them:\nAlways answer in French.")
    assert systems[1]["content"].startswith(systems[0]["content"])
    assert systems[2] == systems[0]


async def test_instructions_of_one_conversation_stay_in_it(
    make_settings: Callable[..., Settings],
) -> None:
    model = ScriptedModel(["Oui."])
    app = create_app(make_settings(), model=model)
    async with app.router.lifespan_context(app), client_for(app) as client:
        steered, plain = await new_conversation(client), await new_conversation(client)
        await client.patch(f"/api/conversations/{steered}", json={"instructions": "En français."})
        await ask(client, steered, "Hello")
        await ask(client, plain, "Hello")
        retried = await client.post(f"/api/conversations/{steered}/retry")
        await events(client, retried.json()["events_url"])
    assert model.instructions == ["En français.", "", "En français."]


# -- Gemini: instructions in the agent's prompt, the title from a plain call -------------


async def test_gemini_sends_the_instructions_and_titles_with_a_plain_call(
    settings: Settings,
) -> None:
    llm = ScriptedGemini(turns=[[Final("Bonjour.")], [Final("**Salutations en français**")]])
    model = GeminiModel(settings.model_copy(update={"search": "none"}), llm=llm)
    try:
        said = [event async for event in model.stream(turns("Hello"), instructions="In French.")]
        assert said
        assert "follow them:\nIn French." in str(llm.requests[0].config.system_instruction)
        title = await model.title("Hello", "Bonjour.", 5.0)
        assert clean_title(title) == "Salutations en français"
        titled = llm.requests[1]
        assert str(titled.config.system_instruction) == TITLE_PROMPT
        assert "Hello" in request_texts(titled)[0][1] and not titled.tools_dict
    finally:
        await model.close()


async def test_a_failing_gemini_title_is_a_readable_error(settings: Settings) -> None:
    llm = ScriptedGemini(turns=[[Raise(ConnectionRefusedError("refused"))]])
    model = GeminiModel(settings, llm=llm)
    try:
        with pytest.raises(ProviderError) as caught:
            await model.title("Hello", "Bonjour.", 5.0)
        assert "Could not reach" in caught.value.detail
    finally:
        await model.close()


# -- what a title may hold ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "title"),
    [
        ('"Alembic on SQLite"', "Alembic on SQLite"),
        ("Title: **Bold** `code` move.", "Bold code move"),
        ("# Heading title\nsecond line", "Heading title"),
        ("\n\n  «Guillemets»  \n", "Guillemets"),
        ("<script>alert(1)</script>", "scriptalert(1)/script"),
        ("“”", None),
        ("", None),
        ("word " * 30, "word " * 11 + "word…"),
    ],
)
def test_a_model_title_is_cleaned(raw: str, title: str | None) -> None:
    cleaned = clean_title(raw)
    assert cleaned == (title.strip() if title else None)
    assert cleaned is None or len(cleaned) <= 60


def test_an_unknown_titles_value_names_the_variable() -> None:
    from hxchat.config import load_settings
    from hxchat.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        load_settings(titles="llm")
    assert caught.value.variable == "HXCHAT_TITLES"
    assert load_settings(titles="first-message").titles == "first-message"
    assert load_settings().titles == "model"
