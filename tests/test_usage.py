"""What an answer cost (#10): its tokens as the model's provider reported them and its
times, stored with the answer and shown in its JSON, its `done` event, its footer (the
page's and the stream's last frame) and `/metrics`; through the real app with echo
(words as tokens), the scripted OpenAI-compatible server (usage chunks, and a server
that refuses `stream_options`) and a scripted Gemini under the real ADK agent."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from hxchat.app import create_app
from hxchat.config import Settings
from hxchat.providers.gemini import GeminiModel
from tests import html_tree
from tests.helpers import client_for, events, new_conversation, running_app, send
from tests.scripted_gemini import ScriptedGemini, answer
from tests.scripted_openai import ScriptedOpenAI, Text


async def ask(client: httpx.AsyncClient, cid: str, content: str) -> tuple[Any, dict[str, Any]]:
    """Send `content`, read its answer's JSON stream to the end: the `done` event's data
    and the answer as `GET /api/conversations/{id}` shows it."""
    response = await client.post(f"/api/conversations/{cid}/messages", json={"content": content})
    assert response.status_code == 202, response.text
    _, evs = await events(client, response.json()["events_url"])
    assert evs[-1].event == "done", evs
    conversation = (await client.get(f"/api/conversations/{cid}")).json()
    return evs[-1].json(), conversation["messages"][-1]


def footer(html: str, message_id: int | None = None) -> str:
    """The footer's text of the message's article (of the only one, by default)."""
    tree = html_tree.parse(html)
    article = tree.find("article") if message_id is None else tree.find(id=f"msg-{message_id}")
    return " ".join(article.find("footer").text.split())


def metric(metrics: str, line: str) -> float:
    """The value of the metric `line` names (name and labels, as exposed)."""
    found = re.search(rf"^{re.escape(line)} (\S+)$", metrics, re.MULTILINE)
    assert found, f"{line} not in /metrics"
    return float(found.group(1))


@pytest.fixture
async def echo_client(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_settings(echo_delay_ms=20)) as app, client_for(app) as c:
        yield c


async def test_an_echo_answer_records_its_words_as_tokens_and_its_times(
    echo_client: httpx.AsyncClient,
) -> None:
    cid = await new_conversation(echo_client)
    done, message = await ask(echo_client, cid, "one two three four")

    usage = {"input_tokens": 4, "output_tokens": 4}
    assert done["usage"] == usage == message["usage"]
    timing = message["timing"]
    assert set(timing) == {"first_text_ms", "total_ms"}
    # Four words 20 ms apart: the last comes 60 ms after the first.
    assert 0 <= timing["first_text_ms"] < timing["total_ms"]
    assert timing["total_ms"] - timing["first_text_ms"] >= 55
    conversation = (await echo_client.get(f"/api/conversations/{cid}")).json()
    question = conversation["messages"][0]
    assert question["usage"] is None and question["timing"] is None

    # The footer: the model, the output tokens and the seconds.
    page = (await echo_client.get(f"/c/{cid}")).text
    seconds = f"{timing['total_ms'] / 1000:.1f} s"
    assert footer(page, message["id"]).startswith(f"echo · 4 tokens · {seconds}")

    # A second answer reads the whole conversation: eight words more, and one word out.
    done, second = await ask(echo_client, cid, "five")
    assert second["usage"] == {"input_tokens": 9, "output_tokens": 1} == done["usage"]
    assert footer((await echo_client.get(f"/c/{cid}")).text, second["id"]).startswith(
        "echo · 1 token · "
    )

    metrics = (await echo_client.get("/metrics")).text
    assert metric(metrics, 'hxchat_tokens_total{direction="input",model="echo"}') == 13
    assert metric(metrics, 'hxchat_tokens_total{direction="output",model="echo"}') == 5
    assert metric(metrics, 'hxchat_time_to_first_text_seconds_count{model="echo"}') == 2


async def test_the_streams_last_frame_shows_the_tokens_and_seconds(
    echo_client: httpx.AsyncClient,
) -> None:
    """The browser's stream ends with the finished article: its footer has what the
    page will show after a reload, and a stream opened after the end has it too."""
    cid = await new_conversation(echo_client)
    started = await send(echo_client, cid, "a b c")
    stream = f"/generations/{started['generation_id']}/stream"
    for _ in range(2):  # while it is written (or just after), then once it is stored
        _, frames = await events(echo_client, stream)
        assert frames[-1].event == "end"
        assert "3 tokens · " in footer(frames[-1].data)
    finished = (await echo_client.get(f"/api/conversations/{cid}")).json()["messages"][-1]
    seconds = f"{finished['timing']['total_ms'] / 1000:.1f} s"
    assert f"3 tokens · {seconds}" in footer(frames[-1].data)


# -- OpenAI-compatible servers ------------------------------------------------------------


@pytest.fixture
def openai_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(model="openai:scripted", search="none")


async def test_openai_usage_is_asked_for_stored_and_counted(
    openai_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ScriptedOpenAI([Text(["The answer ", "is short."])]) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        async with running_app(openai_settings) as app, client_for(app) as client:
            cid = await new_conversation(client)
            done, message = await ask(client, cid, "Say something short")
            metrics = (await client.get("/metrics")).text
            page = (await client.get(f"/c/{cid}")).text
    body = server.bodies[0]
    assert body["stream_options"] == {"include_usage": True}
    sent = sum(len(m["content"].split()) for m in body["messages"])  # system prompt too
    assert message["usage"] == {"input_tokens": sent, "output_tokens": 4} == done["usage"]
    assert message["model"] == "openai:scripted"
    assert footer(page, message["id"]).startswith("scripted (openai) · 4 tokens · ")
    labels = 'direction="output",model="openai:scripted"'
    assert metric(metrics, f"hxchat_tokens_total{{{labels}}}") == 4
    labels = 'direction="input",model="openai:scripted"'
    assert metric(metrics, f"hxchat_tokens_total{{{labels}}}") == sent
    assert metric(metrics, 'hxchat_time_to_first_text_seconds_count{model="openai:scripted"}') == 1


async def test_a_server_that_refuses_stream_options_still_answers_once_asked_again(
    openai_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refusal is retried once without the option and remembered: the next answer
    does not ask; the answers have no usage (null), their times still."""
    with ScriptedOpenAI([Text(["Fine, ", "thanks."])], refuse_stream_options=True) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        async with running_app(openai_settings) as app, client_for(app) as client:
            cid = await new_conversation(client)
            done, first = await ask(client, cid, "How are you?")
            _, second = await ask(client, cid, "Really?")
            page = (await client.get(f"/c/{cid}")).text
            metrics = (await client.get("/metrics")).text
    assert first["content"] == "Fine, thanks." == second["content"]
    streamed = [r.json() for r in server.requests if r.json().get("stream")]  # no title's
    assert [("stream_options" in body) for body in streamed] == [True, False, False]
    nothing = {"input_tokens": None, "output_tokens": None}
    assert first["usage"] == nothing == second["usage"] == done["usage"]
    assert isinstance(first["timing"]["total_ms"], int)
    shown = footer(page, first["id"])
    assert "token" not in shown and re.match(r"scripted \(openai\) · \d+\.\d s", shown)
    assert "hxchat_tokens_total{" not in metrics  # nothing reported, nothing counted


# -- Gemini -----------------------------------------------------------------------------


@pytest.fixture
async def gemini(make_settings: Callable[..., Settings]) -> AsyncIterator[FastAPI]:
    settings = make_settings(first_token_timeout=10.0, token_timeout=2.0)
    llm = ScriptedGemini(turns=[answer(["Paris ", "is the ", "capital."])], delay=0.01)
    app = create_app(settings, model=GeminiModel(settings, llm=llm))
    async with app.router.lifespan_context(app):
        yield app


async def test_gemini_usage_metadata_is_stored_and_counted(gemini: FastAPI) -> None:
    async with client_for(gemini) as client:
        cid = await new_conversation(client)
        done, message = await ask(client, cid, "What is the capital of France?")
        metrics = (await client.get("/metrics")).text
    # The scripted model reports words as tokens: six sent, four answered.
    assert message["usage"] == {"input_tokens": 6, "output_tokens": 4} == done["usage"]
    assert message["timing"]["first_text_ms"] <= message["timing"]["total_ms"]
    model = "gemini:gemini-2.5-flash"
    assert metric(metrics, f'hxchat_tokens_total{{direction="input",model="{model}"}}') == 6
    assert metric(metrics, f'hxchat_tokens_total{{direction="output",model="{model}"}}') == 4
