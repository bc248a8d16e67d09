"""Real providers through hxchat's HTTP streams: what programs and pages see of them.

The provider tests check each adapter alone; these run the real adapter inside the app
and look where a user or a program looks: the JSON event stream, the stored
conversation, the page and the browser's frames. OpenAI-compatible: the real `openai`
SDK against a scripted Chat Completions server on loopback, searching a scripted
SearXNG. Gemini: the real ADK `Runner` and `Agent` on a scripted `BaseLlm`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from hxchat.app import create_app
from hxchat.config import Settings
from hxchat.logs import DropForeignTracebacks
from hxchat.providers.gemini import GeminiModel
from tests import html_tree, sse
from tests.helpers import client_for, events, eventually, new_conversation, running_app, send
from tests.scripted_gemini import CHIP_HTML, Partial, Raise, ScriptedGemini, answer, grounded
from tests.scripted_openai import (
    Cut,
    Reply,
    Respond,
    ScriptedOpenAI,
    Stall,
    Status,
    Text,
    ToolCalls,
)
from tests.scripted_searxng import ScriptedSearxng, Slow, pages_for

KEY = "sk-hxchat-FAKE-SECRET-4f2a9c7e1d0b"  # must never reach a page, an event or the log
QUERY = "capital of France"
SOURCES = [{"title": row["title"], "url": row["url"]} for row in pages_for(QUERY)]
SANDBOX = {"allow-popups", "allow-popups-to-escape-sandbox"}  # and no allow-scripts
GEMINI_ENV = ("GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_ENTERPRISE")


@pytest.fixture(autouse=True)
def provider_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A recognisable fake OpenAI key; no developer's Gemini endpoint."""
    for name in GEMINI_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return monkeypatch


@pytest.fixture
def searx() -> Iterator[ScriptedSearxng]:
    with ScriptedSearxng([Slow(0.3)]) as server:  # slow enough to see the activity line
        yield server


@pytest.fixture
def openai_settings(make_settings: Callable[..., Settings], searx: ScriptedSearxng) -> Settings:
    return make_settings(
        model="openai:test-model",
        search="searxng",
        searxng_url=searx.base_url,
        first_token_timeout=2.0,
        token_timeout=1.0,
        # The scripts here are the answers' requests, in turn; a title request after a
        # first answer would take one of them (titles: tests/test_titles.py).
        titles="first-message",
    )


@asynccontextmanager
async def openai_app(
    script: list[Reply], settings: Settings, env: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FastAPI, ScriptedOpenAI]]:
    """The app as `HXCHAT_MODEL=openai:test-model` runs it, against a scripted server."""
    with ScriptedOpenAI(script) as server:
        env.setenv("OPENAI_BASE_URL", server.base_url)
        async with running_app(settings) as app:
            yield app, server


@asynccontextmanager
async def gemini_app(make_settings: Callable[..., Settings], *turns: Any) -> AsyncIterator[FastAPI]:
    """The app with a Gemini ADK agent whose model call is scripted."""
    # A generous first-token timeout: ADK's first run in a process imports a lot.
    settings = make_settings(first_token_timeout=10.0, token_timeout=2.0)
    model = GeminiModel(settings, llm=ScriptedGemini(turns=list(turns), delay=0.02))
    app = create_app(settings, model=model)
    async with app.router.lifespan_context(app):
        yield app


def audited(app: FastAPI, seen: list[str]) -> httpx.AsyncClient:
    """A client that keeps every answer's headers and body in `seen`."""

    async def keep(response: httpx.Response) -> None:
        await response.aread()
        seen.append(f"{list(response.headers.items())}\n{response.text}")

    client = client_for(app)
    client.event_hooks["response"].append(keep)
    return client


def text_of(evs: list[sse.Event]) -> str:
    return "".join(e.json()["text"] for e in evs if e.event == "delta")


def assistant(page_html: str) -> html_tree.Node:
    """The last assistant article of a page."""
    return html_tree.parse(page_html).find_all("article", data_role="assistant")[-1]


def source_links(node: html_tree.Node) -> list[dict[str, str]]:
    """The numbered links (`ol li a`) inside the node's `[data-sources]` element."""
    block = node.find(data_sources=None)
    return [
        {"title": a.text, "url": str(a.attrs["href"])}
        for li in block.find("ol").find_all("li")
        for a in li.find_all("a")
    ]


def assert_readable(message: str, where: str) -> None:
    """One sentence a person understands: names the provider, no key, no trace."""
    assert message[:1].isupper() and message.endswith("."), message
    assert where in message, message
    assert KEY not in message and "Traceback" not in message and 'File "' not in message
    assert len(message) < 300, message


# -- OpenAI-compatible -------------------------------------------------------------------


async def ask(
    client: httpx.AsyncClient, cid: str, question: str
) -> tuple[str, list[sse.Event], list[sse.Event], dict[str, Any], str]:
    """Send `question` and take the answer as each reader sees it: the JSON events and
    the browser frames (read at the same time), then the stored message and the page.
    Returns (generation id, events, frames, stored message, page)."""
    started = await send(client, cid, question)
    gid = started["generation_id"]
    browser = asyncio.create_task(client.get(f"/generations/{gid}/stream"))
    _, evs = await events(client, started["events_url"])
    frames = sse.parse((await browser).text)
    stored = (await client.get(f"/api/conversations/{cid}")).json()["messages"][-1]
    page = (await client.get(f"/c/{cid}")).text
    return gid, evs, frames, stored, page


async def test_openai_search_round_trip_then_a_second_turn(
    openai_settings: Settings, provider_env: pytest.MonkeyPatch
) -> None:
    script: list[Reply] = [
        ToolCalls([("web_search", json.dumps({"query": QUERY}))]),
        Text(["Paris ", "is the capital ", "[1]."], delay=0.05),
        Text(["About 2 million."]),
    ]
    async with (
        openai_app(script, openai_settings, provider_env) as (app, server),
        client_for(app) as client,
    ):
        cid = await new_conversation(client)
        _, evs, frames, stored, page = await ask(client, cid, "What is the capital of France?")
        second = await send(client, cid, "Population?")
        _, second_evs = await events(client, second["events_url"])

    assert [e.event for e in evs[:2]] == ["tool_call", "tool_result"]
    assert evs[0].json() == {"name": "web_search", "arguments": {"query": QUERY}}
    assert evs[1].json() == {"name": "web_search", "sources": SOURCES}
    assert {e.event for e in evs[2:-1]} == {"delta"}
    assert text_of(evs) == "Paris is the capital [1]."
    assert (evs[-1].event, evs[-1].json()) == (
        "done",
        {"message_id": stored["id"], "status": "complete", "usage": stored["usage"]},
    )
    # Both calls' tokens: the one that asked for the search (one call), then the answer.
    assert stored["usage"]["output_tokens"] == 1 + 5
    # The model got the numbered snippets back as the tool's answer.
    tool_message = server.bodies[1]["messages"][-1]
    assert tool_message["role"] == "tool"
    assert tool_message["content"].startswith(f"[1] {SOURCES[0]['title']} — {SOURCES[0]['url']}")

    assert stored["sources"] == SOURCES
    assert (stored["status"], stored["content"]) == ("complete", "Paris is the capital [1].")
    article = assistant(page)
    assert article.attrs["data-status"] == "complete"
    assert source_links(article) == SOURCES

    # The second turn's request carries the first turn (its answer, not the tool calls).
    assert (second_evs[-1].event, text_of(second_evs)) == ("done", "About 2 million.")
    sent = server.bodies[2]["messages"]
    assert sent[0]["role"] == "system"
    assert sent[1:] == [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris is the capital [1]."},
        {"role": "user", "content": "Population?"},
    ]

    # The browser's frames: the activity line while searching, then the sources.
    assert frames[-1].event == "end"
    parsed = [html_tree.parse(f.data) for f in frames[:-1]]
    lines = [[p.text for p in tree.find_all("p", class_="activity")] for tree in parsed]
    searching = f"Searching the web for “{QUERY}”…"
    at_activity = next(i for i, line in enumerate(lines) if line == [searching])
    with_sources = [i for i, tree in enumerate(parsed) if tree.find_all(data_sources=None)]
    assert with_sources and with_sources[0] > at_activity
    assert source_links(parsed[with_sources[0]]) == SOURCES
    assert [""] in lines[at_activity + 1 :]  # the activity line is cleared
    assert source_links(html_tree.parse(frames[-1].data).find("article")) == SOURCES


def fault_once(fault: Reply) -> Respond:
    """`fault` for the first question that begins with "Please fail"; otherwise (also
    for that question again) an answer that repeats the question."""
    used: list[Reply] = []

    def choose(body: dict[str, Any]) -> Reply:
        question = str(body["messages"][-1]["content"])
        if question.startswith("Please fail") and not used:
            used.append(fault)
            return fault
        return Text(["Answer to: ", question])

    return Respond(choose)


FAULTS: dict[str, tuple[Reply, str, str]] = {
    "http-500": (Status(500, f"upstream exploded for key {KEY}"), "", "failed (HTTP 500)"),
    "cut-mid-stream": (Cut(("Partial ", "answer ")), "Partial answer ", "was cut off"),
    "stall-between-tokens": (Stall(30, ["Thinking "]), "Thinking ", "sent nothing for 1 second"),
    "stall-before-first-token": (Stall(30), "", "did not answer within 2 seconds"),
    "error-in-stream": (
        Text(["Partial "], error=f"Incorrect API key provided: {KEY}"),
        "Partial ",
        "stopped with an error in the middle of the answer",
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_openai_fault_is_a_readable_error_and_retry_works(
    fault: str,
    openai_settings: Settings,
    provider_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    reply, partial, expected = FAULTS[fault]
    seen: list[str] = []
    async with (
        openai_app([fault_once(reply)], openai_settings, provider_env) as (app, server),
        audited(app, seen) as client,
        audited(app, seen) as other,
    ):
        loop = asyncio.get_running_loop()
        began = loop.time()
        cid = await new_conversation(client)
        started = await send(client, cid, "Please fail")
        await eventually(lambda: len(server.requests) > 0)  # the model is asked
        # Meanwhile another session's conversation is answered as usual.
        other_cid = await new_conversation(other)
        other_started = await send(other, other_cid, "Hello there")
        _, other_evs = await events(other, other_started["events_url"])
        assert (other_evs[-1].event, text_of(other_evs)) == ("done", "Answer to: Hello there")
        if "stall" in fault:  # still waiting for the silent server
            running = (await client.get(f"/api/conversations/{cid}")).json()["messages"]
            assert running[-1]["status"] == "streaming"

        _, evs = await events(client, started["events_url"])
        assert loop.time() - began < 8  # the configured timeouts are 1 and 2 seconds
        assert evs[-1].event == "error"
        message = evs[-1].json()["message"]
        assert expected in message
        assert_readable(message, server.origin)
        assert text_of(evs) == partial
        stored = (await client.get(f"/api/conversations/{cid}")).json()["messages"][-1]
        assert (stored["status"], stored["content"]) == ("error", partial)

        article = assistant((await client.get(f"/c/{cid}")).text)
        assert article.attrs["data-status"] == "error"
        assert article.find("p", class_="note").text == f"The model did not answer: {message}"
        button = article.find("button", class_="retry")
        assert (button.text, button.attrs["hx-post"]) == ("Retry", f"/c/{cid}/retry")

        retried = await client.post(f"/api/conversations/{cid}/retry")
        assert retried.status_code == 202
        _, evs = await events(client, retried.json()["events_url"])
        assert (evs[-1].json()["status"], text_of(evs)) == ("complete", "Answer to: Please fail")
        following = await send(client, cid, "And now?")
        _, evs = await events(client, following["events_url"])
        assert (evs[-1].event, text_of(evs)) == ("done", "Answer to: And now?")
        messages = (await client.get(f"/api/conversations/{cid}")).json()["messages"]
        assert [m["status"] for m in messages] == ["complete"] * 4

    assert any("event: error" in answer for answer in seen)  # the audit saw the streams
    assert all(KEY not in answer for answer in seen)
    assert KEY not in caplog.text
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info]


# -- Gemini through ADK ------------------------------------------------------------------


def policy(header: str) -> dict[str, list[str]]:
    """A Content-Security-Policy header as directive -> values."""
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in directives}


async def test_gemini_grounded_answer_sources_and_search_suggestions(
    make_settings: Callable[..., Settings],
) -> None:
    text = "Paris is the capital of France."
    turn = answer(["Paris ", "is the capital ", "of France."], grounded())
    async with (
        gemini_app(make_settings, turn) as app,
        client_for(app) as client,
        client_for(app) as stranger,
    ):
        cid = await new_conversation(client)
        gid, evs, frames, stored, page = await ask(client, cid, "What is the capital of France?")
        chip = await client.get(f"/generations/{gid}/suggestions")
        assert (await stranger.get(f"/generations/{gid}/suggestions")).status_code == 404
        cookies = httpx.Cookies(client.cookies)

    sources = [
        {"title": "Paris - Wikipedia", "url": "https://en.wikipedia.org/wiki/Paris"},
        {"title": "France facts", "url": "https://example.org/france"},
    ]
    assert text_of(evs) == text  # the final event's repeat of the text is not shown
    calls = [e.json() for e in evs if e.event == "tool_call"]
    assert calls == [{"name": "google_search", "arguments": {"queries": [QUERY]}}]
    results = [e.json() for e in evs if e.event == "tool_result"]
    assert results == [{"name": "google_search", "sources": sources}]
    assert evs[-1].event == "done" and evs[-1].json()["status"] == "complete"
    assert (stored["content"], stored["sources"]) == (text, sources)
    assert frames[-1].event == "end"
    assert source_links(html_tree.parse(frames[-1].data).find("article")) == sources

    article = assistant(page)
    assert article.find(class_="md").text.strip() == text
    assert source_links(article) == sources
    frame = article.find("iframe")
    assert frame.attrs["src"] == f"/generations/{gid}/suggestions"
    assert set(str(frame.attrs["sandbox"]).split()) == SANDBOX

    assert chip.status_code == 200
    assert chip.headers["content-type"].startswith("text/html")
    assert CHIP_HTML in chip.text  # Google's HTML and CSS, unchanged
    rules = policy(chip.headers["content-security-policy"])
    assert rules.get("script-src", rules["default-src"]) == ["'none'"]
    assert not [name for name in rules if name.startswith("script-src-")]
    assert "'unsafe-inline'" in rules["style-src"]
    assert set(rules["sandbox"]) <= SANDBOX

    # Stored with the message: a restarted server still serves and shows it.
    async with gemini_app(make_settings, turn) as app, client_for(app) as client:
        client.cookies = cookies
        again = await client.get(f"/generations/{gid}/suggestions")
        assert (again.status_code, again.text) == (200, chip.text)
        assert assistant((await client.get(f"/c/{cid}")).text).find("iframe")


async def test_gemini_exception_mid_stream_keeps_the_partial_answer(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    # ADK logs a traceback for every failed turn; `hxchat serve` drops tracebacks of
    # third-party records (hxchat.logs), so this log is filtered as the server's is.
    caplog.handler.addFilter(DropForeignTracebacks())
    caplog.set_level(logging.INFO)
    failing = [Partial("Paris "), Partial("is "), Raise(ConnectionResetError("reset by peer"))]
    async with (
        gemini_app(make_settings, failing, answer(["Paris is the capital."])) as app,
        client_for(app) as client,
    ):
        cid = await new_conversation(client)
        started = await send(client, cid, "What is the capital of France?")
        _, evs = await events(client, started["events_url"])
        assert text_of(evs) == "Paris is "
        assert evs[-1].event == "error"
        message = evs[-1].json()["message"]
        assert "cut off in the middle of the answer" in message
        assert_readable(message, "the Gemini API")
        stored = (await client.get(f"/api/conversations/{cid}")).json()["messages"][-1]
        assert (stored["status"], stored["content"]) == ("error", "Paris is ")
        article = assistant((await client.get(f"/c/{cid}")).text)
        assert article.attrs["data-status"] == "error"
        assert article.find("button", class_="retry").text == "Retry"

        retried = await client.post(f"/api/conversations/{cid}/retry")
        assert retried.status_code == 202
        _, evs = await events(client, retried.json()["events_url"])
        assert (evs[-1].event, text_of(evs)) == ("done", "Paris is the capital.")
    assert "gemini:gemini-2.5-flash failed: ConnectionResetError" in caplog.text
    assert "Traceback" not in caplog.text
