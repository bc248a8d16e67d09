"""OpenAI-compatible models: the real `openai` SDK against a scripted server on loopback.

It speaks Chat Completions streaming (text and `tool_calls` deltas, `[DONE]`, HTTP
errors, a cut, a stall); search goes to a scripted SearXNG. Checked: what a user sees
(answer, sources, a readable error in time, the next answer working) and what the
model is sent (history, tools, numbered snippets).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hxchat.config import Settings
from hxchat.domain import AgentEvent, Role, Source, TextDelta, ToolCall, ToolResult, Turn, Usage
from hxchat.errors import ConfigError, ProviderError, ProviderTimeout, ProviderUnavailable
from hxchat.providers.history import trim_history
from hxchat.providers.openai_compat import OpenAICompatModel, build_openai_model
from hxchat.providers.registry import build_model
from hxchat.providers.search import SearxngSearch
from tests.helpers import ask, eventually, run, text_of, without_usage
from tests.scripted_openai import Cut, Reply, ScriptedOpenAI, Stall, Status, Text, ToolCalls
from tests.scripted_searxng import Fail, ScriptedSearxng
from tests.servers import free_port

KEY = "sk-test-secret-key-0123456789"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(first_token_timeout=1.0, token_timeout=0.5, max_tool_rounds=2)


@pytest.fixture
def searx() -> Iterator[ScriptedSearxng]:
    with ScriptedSearxng() as server:  # every query finds 3 pages named after it
        yield server


@pytest.fixture
async def make_model(
    settings: Settings, searx: ScriptedSearxng
) -> AsyncIterator[Callable[..., OpenAICompatModel]]:
    """Models on a scripted server, searching the scripted SearXNG; closed afterwards."""
    models: list[OpenAICompatModel] = []

    def make(
        server: ScriptedOpenAI | str, *, search: bool = True, **options: Any
    ) -> OpenAICompatModel:
        model = OpenAICompatModel(
            "scripted",
            base_url=server if isinstance(server, str) else server.base_url,
            api_key=KEY,
            settings=settings.model_copy(update=options),
            search=SearxngSearch(searx.base_url) if search else None,
        )
        models.append(model)
        return model

    yield make
    for model in models:
        await model.close()


# -- answers --------------------------------------------------------------------------


async def test_streams_the_text_deltas(make_model: Callable[..., OpenAICompatModel]) -> None:
    with ScriptedOpenAI([Text(["Hel", "lo", ", world"])]) as server:
        events, error = await run(make_model(server), ask("Say hello"))
    assert error is None
    body = server.bodies[0]
    # Usage was asked for, and comes after the text: the words sent, and answered.
    assert body["stream_options"] == {"include_usage": True}
    sent = sum(len(message["content"].split()) for message in body["messages"])
    assert events == [
        TextDelta("Hel"),
        TextDelta("lo"),
        TextDelta(", world"),
        Usage(input_tokens=sent, output_tokens=2),
    ]
    assert body["model"] == "scripted" and body["stream"] is True
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][1:] == [{"role": "user", "content": "Say hello"}]
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


async def test_second_turn_carries_the_first(make_model: Callable[..., OpenAICompatModel]) -> None:
    with ScriptedOpenAI([Text(["Paris."]), Text(["About 2 million."])]) as server:
        model = make_model(server)
        first, _ = await run(model, ask("Capital of France?"))
        second, _ = await run(model, ask("Capital of France?", text_of(first), "Population?"))
    assert text_of(second) == "About 2 million."
    assert server.bodies[1]["messages"][1:] == [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "Population?"},
    ]


async def test_long_history_is_trimmed_oldest_first(
    make_model: Callable[..., OpenAICompatModel],
) -> None:
    history = ask(*[f"{index:02d}" + "x" * 498 for index in range(40)], "newest question")
    with ScriptedOpenAI([Text(["ok"])]) as server:
        await run(make_model(server, history_budget_chars=5_000), history)
    sent = server.bodies[0]["messages"][1:]
    assert sent[-1] == {"role": "user", "content": "newest question"}
    assert sum(len(message["content"]) for message in sent) <= 5_000
    assert sent[0]["role"] == "user"
    assert [message["content"][:2] for message in sent[:-1]] == [
        f"{index:02d}" for index in range(40 - len(sent) + 1, 40)
    ]


# -- web search -----------------------------------------------------------------------


async def test_tool_round_trip_ends_in_an_answer_with_sources(
    make_model: Callable[..., OpenAICompatModel], searx: ScriptedSearxng
) -> None:
    script: list[Reply] = [
        ToolCalls([("web_search", json.dumps({"query": "capital of France"}))], pieces=4),
        Text(["Paris ", "[1]."]),
    ]
    with ScriptedOpenAI(script) as server:
        events, error = await run(make_model(server), ask("What is the capital of France?"))
    assert error is None
    assert isinstance(events[0], Usage)  # of the first call, which asked for the search
    events = without_usage(events)
    assert events[0] == ToolCall("web_search", {"query": "capital of France"})
    assert events[1] == ToolResult(
        "web_search",
        tuple(
            Source(f"capital of France — result {n}", f"https://example.org/capital-of-france/{n}")
            for n in (1, 2, 3)
        ),
    )
    assert text_of(events) == "Paris [1]."
    assert searx.queries == ["capital of France"]

    offered = server.bodies[0]["tools"]
    assert [tool["function"]["name"] for tool in offered] == ["web_search"]
    call, tool = server.bodies[1]["messages"][-2:]
    assert call["role"] == "assistant"
    assert call["tool_calls"][0]["function"] == {
        "name": "web_search",
        "arguments": '{"query": "capital of France"}',
    }
    assert tool["role"] == "tool"
    assert tool["tool_call_id"] == call["tool_calls"][0]["id"]
    assert tool["content"].startswith(
        "[1] capital of France — result 1 — https://example.org/capital-of-france/1\n"
    )
    assert "\n\n[3] " in tool["content"]


async def test_numbers_continue_across_search_rounds(
    make_model: Callable[..., OpenAICompatModel],
) -> None:
    script: list[Reply] = [
        ToolCalls([("web_search", '{"query": "paris"}')]),
        ToolCalls([("web_search", '{"query": "lyon"}'), ("web_search", '{"query": "paris"}')]),
        Text(["Both [1] and [4]."]),
    ]
    with ScriptedOpenAI(script) as server:
        events, error = await run(make_model(server), ask("Paris or Lyon?"))
    assert error is None
    results = [event for event in events if isinstance(event, ToolResult)]
    assert [len(result.sources) for result in results] == [3, 3, 0]
    assert results[1].sources[0].url == "https://example.org/lyon/1"
    lyon, paris_again = server.bodies[2]["messages"][-2:]
    assert lyon["content"].startswith("[4] lyon — result 1")
    assert paris_again["content"] == "Also found again: [1], [2], [3] (see above)."


async def test_tool_rounds_are_bounded(make_model: Callable[..., OpenAICompatModel]) -> None:
    search_again = ToolCalls([("web_search", '{"query": "more"}')])
    with ScriptedOpenAI([search_again, search_again, Text(["Enough."])]) as server:
        events, error = await run(make_model(server, max_tool_rounds=2), ask("Search forever"))
    assert error is None
    assert text_of(events) == "Enough."
    assert ["tools" in body for body in server.bodies] == [True, True, False]


async def test_no_search_no_tools(make_model: Callable[..., OpenAICompatModel]) -> None:
    with ScriptedOpenAI([Text(["Hi."])]) as server:
        events, _ = await run(make_model(server, search=False), ask("Hello"))
    assert text_of(events) == "Hi."
    assert "tools" not in server.bodies[0]


async def test_malformed_tool_call_lets_the_model_recover(
    make_model: Callable[..., OpenAICompatModel], searx: ScriptedSearxng
) -> None:
    with ScriptedOpenAI([ToolCalls([("web_search", '{"query": ')]), Text(["Sorry."])]) as server:
        events, error = await run(make_model(server), ask("Search something"))
    assert error is None
    assert without_usage(events) == [TextDelta("Sorry.")]
    assert searx.queries == []
    tool = server.bodies[1]["messages"][-1]
    assert tool["role"] == "tool"
    assert "not valid" in tool["content"]


async def test_malformed_tool_calls_that_persist_are_an_error(
    make_model: Callable[..., OpenAICompatModel],
) -> None:
    bad = ToolCalls([("web_search", "not json")], with_ids=False)
    with ScriptedOpenAI([bad, bad, Text(["fine"])]) as server:
        model = make_model(server)
        _, error = await run(model, ask("Search"))
        assert isinstance(error, ProviderError)
        assert "malformed" in error.detail
        events, error = await run(model, ask("Again"))
    assert error is None
    assert text_of(events) == "fine"


async def test_failing_search_is_an_error(
    make_model: Callable[..., OpenAICompatModel], searx: ScriptedSearxng
) -> None:
    searx.script = [Fail(502)]
    with ScriptedOpenAI([ToolCalls([("web_search", '{"query": "q"}')])]) as server:
        events, error = await run(make_model(server), ask("Search"))
    assert without_usage(events) == [ToolCall("web_search", {"query": "q"})]
    assert isinstance(error, ProviderError)
    assert error.detail.startswith(f"Web search failed: the SearXNG server at {searx.base_url}")


# -- usage ----------------------------------------------------------------------------


async def test_usage_of_every_call_of_a_tool_loop_is_reported(
    make_model: Callable[..., OpenAICompatModel], searx: ScriptedSearxng
) -> None:
    script: list[Reply] = [ToolCalls([("web_search", '{"query": "q"}')]), Text(["Two words."])]
    with ScriptedOpenAI(script) as server:
        events, error = await run(make_model(server), ask("Search"))
    assert error is None
    usages = [event for event in events if isinstance(event, Usage)]
    sent = [
        sum(len(m["content"].split()) for m in body["messages"] if isinstance(m["content"], str))
        for body in server.bodies
    ]
    assert usages == [Usage(sent[0], 1), Usage(sent[1], 2)]
    assert all(body["stream_options"] == {"include_usage": True} for body in server.bodies)


async def test_a_server_that_refuses_stream_options_is_asked_again_without_and_remembered(
    make_model: Callable[..., OpenAICompatModel],
) -> None:
    """The 400 naming the option costs one request more, once: the answer comes, without
    usage, and the model's next answers do not ask for it again."""
    with ScriptedOpenAI([Text(["Hi ", "there."])], refuse_stream_options=True) as server:
        model = make_model(server, search=False)
        first, error = await run(model, ask("Hello"))
        assert error is None
        second, error = await run(model, ask("Hello", "Hi there.", "Again"))
    assert error is None
    assert first == [TextDelta("Hi "), TextDelta("there.")] == second
    asked = ["stream_options" in r.json() for r in server.requests]
    assert asked == [True, False, False]
    assert [r.path for r in server.requests] == ["/v1/chat/completions"] * 3


async def test_another_client_error_is_not_taken_for_a_refusal(
    make_model: Callable[..., OpenAICompatModel],
) -> None:
    with ScriptedOpenAI([Status(400, "messages: too long"), Text(["ok"])]) as server:
        model = make_model(server, search=False)
        _, error = await run(model, ask("Hello"))
        assert isinstance(error, ProviderError) and "HTTP 400" in error.detail
        events, _ = await run(model, ask("Hello"))
    assert len(server.requests) == 2  # not asked again at once
    assert all("stream_options" in r.json() for r in server.requests)  # nor forgotten
    assert isinstance(events[-1], Usage) and events[-1].output_tokens == 1


# -- faults ---------------------------------------------------------------------------


FAULTS: list[tuple[Reply, type[ProviderError], str, str]] = [
    (Status(500), ProviderUnavailable, "failed (HTTP 500)", ""),
    (Status(401, f"Incorrect API key provided: {KEY}"), ProviderError, "API key was refused", ""),
    (Status(403), ProviderError, "API key was refused", ""),
    (Status(404), ProviderError, "The model 'scripted' was not found", ""),
    (Status(429), ProviderUnavailable, "rate limiting", ""),
    (Status(400, f"context too long for {KEY}"), ProviderError, "refused the request", ""),
    (Cut(["Partial ", "answer "]), ProviderError, "cut off", "Partial answer "),
    (Text(["Part "], error=f"overloaded {KEY}"), ProviderError, "error in the middle", "Part "),
    (Stall(30), ProviderTimeout, "did not answer within 1 second;", ""),
    (Stall(30, ["Thinking "]), ProviderTimeout, "sent nothing for 0.5 seconds", "Thinking "),
]


@pytest.mark.parametrize(("fault", "kind", "says", "partial"), FAULTS)
async def test_faults_are_readable_and_the_next_request_works(
    make_model: Callable[..., OpenAICompatModel],
    fault: Reply,
    kind: type[ProviderError],
    says: str,
    partial: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    with ScriptedOpenAI([fault, Text(["Fine ", "again."])]) as server:
        model = make_model(server)
        began = time.monotonic()
        events, error = await run(model, ask("Hello"))
        elapsed = time.monotonic() - began
        assert type(error) is kind
        assert says in error.detail
        assert f"http://127.0.0.1:{server.port}" in error.detail
        assert "sk-" not in error.detail + caplog.text and "Traceback" not in caplog.text
        assert text_of(events) == partial  # what was written is kept
        assert elapsed < 1.0 + 2  # within the configured timeout, with room for a slow CI
        events, error = await run(model, ask("Hello"))
    assert error is None
    assert text_of(events) == "Fine again."


async def test_unreachable_server_says_so(make_model: Callable[..., OpenAICompatModel]) -> None:
    port = free_port()
    _, error = await run(make_model(f"http://127.0.0.1:{port}/v1"), ask("Hello"))
    assert isinstance(error, ProviderUnavailable)
    assert error.detail == (
        f"Could not reach the model at http://127.0.0.1:{port} (connection refused). "
        "Is the server running?"
    )


async def test_stop_mid_answer_leaves_the_model_usable(
    make_model: Callable[..., OpenAICompatModel],
) -> None:
    slow = Text([f"word{index} " for index in range(100)], delay=0.02)
    with ScriptedOpenAI([slow, Text(["Next."])]) as server:
        model = make_model(server)
        seen: list[AgentEvent] = []

        async def consume() -> None:
            async for event in model.stream(ask("Talk")):
                seen.append(event)

        task = asyncio.create_task(consume())
        await eventually(lambda: len(seen) >= 3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        events, error = await run(model, ask("Talk", text_of(seen), "Next?"))
    assert error is None
    assert text_of(events) == "Next."


# -- configuration -------------------------------------------------------------------


@pytest.fixture
def clean_openai_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


async def test_openai_endpoint_needs_a_key_and_a_valid_url(
    make_settings: Callable[..., Settings], clean_openai_env: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as caught:
        build_model(make_settings(model="openai:gpt-4o-mini"))
    assert caught.value.variable == "OPENAI_API_KEY"
    assert "OPENAI_BASE_URL" in str(caught.value)
    clean_openai_env.setenv("OPENAI_BASE_URL", "localhost:8000")
    with pytest.raises(ConfigError) as caught:
        build_model(make_settings(model="openai:x"))
    assert caught.value.variable == "OPENAI_BASE_URL"


async def test_local_servers_need_no_key(
    make_settings: Callable[..., Settings], clean_openai_env: pytest.MonkeyPatch
) -> None:
    model = build_openai_model(
        make_settings(search="none"), provider="ollama", model="llama3.2", env={}
    )
    try:
        assert model.name == "ollama:llama3.2"
        assert model.where == "http://localhost:11434"
        assert model.search is None
    finally:
        await model.close()

    with ScriptedOpenAI([Text(["Local ", "answer."])]) as server:
        clean_openai_env.setenv("OPENAI_BASE_URL", server.base_url)
        served = build_model(make_settings(model="openai:scripted", search="none"))
        try:
            events, error = await run(served, ask("Hello"))
        finally:
            await served.close()
    assert error is None
    assert text_of(events) == "Local answer."
    assert server.requests[0].headers["authorization"] == "Bearer not-needed"


# -- history --------------------------------------------------------------------------

turns = st.lists(
    st.builds(Turn, st.sampled_from(list(Role)), st.text(min_size=0, max_size=60)), max_size=30
)


@given(history=turns, budget=st.integers(min_value=0, max_value=400))
def test_trimmed_history_keeps_the_newest_turns_that_fit(history: list[Turn], budget: int) -> None:
    trimmed = trim_history(history, budget)
    spoken = [turn for turn in history if turn.content.strip()]
    # A tail of what was said (oldest dropped first), minus leading assistant turns.
    assert trimmed == spoken[len(spoken) - len(trimmed) :]
    users = [index for index, turn in enumerate(spoken) if turn.role is Role.USER]
    if users:
        assert trimmed[0].role is Role.USER
        assert trimmed[-(len(spoken) - users[-1]) :] == spoken[users[-1] :]
        if len(trimmed) > len(spoken) - users[-1]:
            assert sum(len(turn.content) for turn in trimmed) <= budget


def test_trimmed_history_examples() -> None:
    long_question = Turn(Role.USER, "q" * 5_000)
    assert trim_history([*ask("a" * 10, "b" * 10), long_question], 1_000) == [long_question]
    assert trim_history(ask("one", "two", "three"), 9) == ask("one", "two", "three")[2:]
    assert trim_history(ask("one", "two", "three"), 11) == ask("one", "two", "three")
    stopped_empty = [Turn(Role.USER, "hi"), Turn(Role.ASSISTANT, ""), Turn(Role.USER, "again")]
    assert trim_history(stopped_empty, 100) == [stopped_empty[0], stopped_empty[2]]
