"""Gemini through Google ADK: the real `Runner` and `Agent`, a scripted model underneath.

Most tests plug a scripted `BaseLlm` into `GeminiModel`; a few point the real
google-genai client at a scripted Gemini API on loopback (GOOGLE_GEMINI_BASE_URL),
which also shows that no base URL is hard-coded. Nothing leaves loopback.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from hxchat.config import Settings
from hxchat.domain import (
    AgentEvent,
    SearchSuggestions,
    Source,
    TextDelta,
    ToolCall,
    ToolResult,
    Usage,
)
from hxchat.errors import ConfigError, ProviderError, ProviderTimeout, ProviderUnavailable
from hxchat.providers.gemini import GeminiModel, build_gemini_model
from hxchat.providers.registry import build_model
from tests.helpers import ask, eventually, run, text_of
from tests.scripted_gemini import (
    CHIP_HTML,
    ApiCut,
    ApiReply,
    ApiStatus,
    ErrorResponse,
    Final,
    Partial,
    Raise,
    ScriptedGeminiAPI,
    Sleep,
    answer,
    grounded,
    llm_of,
    request_texts,
    scripted_models,
    server_error,
)
from tests.servers import free_port

GEMINI_ENV = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_ENTERPRISE",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_CLOUD_PROJECT",
)


@pytest.fixture(autouse=True)
def clean_gemini_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in GEMINI_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    # A generous first-token timeout: ADK's first run in a process imports a lot.
    return make_settings(first_token_timeout=10.0, token_timeout=0.5)


@pytest.fixture
async def make_model(settings: Settings) -> AsyncIterator[Callable[..., GeminiModel]]:
    """GeminiModels on scripted turns; closed afterwards."""
    async with scripted_models(settings) as make:
        yield make


# -- answers --------------------------------------------------------------------------


async def test_partials_stream_and_the_final_event_is_not_doubled(
    make_model: Callable[..., GeminiModel],
) -> None:
    model = make_model(answer(["Hel", "lo ", "world."]))
    events, error = await run(model, ask("Say hello"))
    assert error is None
    # The turn's usage (its metadata's token counts) comes when the turn has ended.
    assert events == [
        TextDelta("Hel"),
        TextDelta("lo "),
        TextDelta("world."),
        Usage(input_tokens=2, output_tokens=2),
    ]


async def test_a_final_response_without_partials_is_shown_once(
    make_model: Callable[..., GeminiModel],
) -> None:
    events, error = await run(make_model([Final("All at once.")]), ask("Hi"))
    assert error is None
    assert text_of(events) == "All at once."


async def test_grounding_yields_the_search_its_sources_and_the_chip(
    make_model: Callable[..., GeminiModel],
) -> None:
    metadata = grounded(
        queries=["capital of France"],
        pages=[
            ("Paris - Wikipedia", "https://en.wikipedia.org/wiki/Paris"),
            ("France facts", "https://example.org/france"),
            ("Paris - Wikipedia", "https://en.wikipedia.org/wiki/Paris"),  # a duplicate
        ],
    )
    model = make_model(answer(["Paris ", "is the capital."], metadata))
    events, error = await run(model, ask("What is the capital of France?"))
    assert error is None
    assert text_of(events) == "Paris is the capital."
    assert [event for event in events if not isinstance(event, TextDelta)] == [
        ToolCall("google_search", {"queries": ["capital of France"]}),
        ToolResult(
            "google_search",
            (
                Source("Paris - Wikipedia", "https://en.wikipedia.org/wiki/Paris"),
                Source("France facts", "https://example.org/france"),
            ),
        ),
        SearchSuggestions(CHIP_HTML),  # Google's HTML, unchanged
        Usage(input_tokens=6, output_tokens=4),
    ]


async def test_history_reaches_the_model(
    make_model: Callable[..., GeminiModel], settings: Settings
) -> None:
    model = make_model(answer(["Paris."]), answer(["About 2 million."]))
    first, _ = await run(model, ask("Capital of France? {not a template}"))
    second, _ = await run(
        model, ask("Capital of France? {not a template}", text_of(first), "Population?")
    )
    assert text_of(second) == "About 2 million."
    request = llm_of(model).requests[1]
    assert request_texts(request) == [
        ("user", "Capital of France? {not a template}"),
        ("model", "Paris."),
        ("user", "Population?"),
    ]
    instruction = str(request.config.system_instruction)
    assert settings.system_prompt in instruction
    tools = request.config.tools or []
    assert [getattr(tool, "google_search", None) is not None for tool in tools] == [True]


async def test_braces_in_the_system_prompt_are_kept(make_model: Callable[..., GeminiModel]) -> None:
    model = make_model(system_prompt="Answer as {persona}.")
    _, error = await run(model, ask("Hi"))
    assert error is None
    assert "Answer as {persona}." in str(llm_of(model).requests[0].config.system_instruction)


async def test_search_none_turns_grounding_off(make_model: Callable[..., GeminiModel]) -> None:
    model = make_model(search="none")
    await run(model, ask("Hi"))
    assert not llm_of(model).requests[0].config.tools


async def test_each_answer_leaves_no_session_behind(
    make_model: Callable[..., GeminiModel],
) -> None:
    model = make_model(answer(["One."]), [Partial("Tw"), Raise(RuntimeError("boom"))])
    await run(model, ask("1"))
    await run(model, ask("2"))
    sessions = await model._sessions.list_sessions(app_name="hxchat", user_id="hxchat")
    assert sessions.sessions == []


# -- faults ---------------------------------------------------------------------------


FAULTS: list[tuple[Any, type[ProviderError], str]] = [
    (Raise(ConnectionResetError("reset by peer")), ProviderError, "was cut off"),
    (Raise(server_error(503, "UNAVAILABLE", "overloaded")), ProviderUnavailable, "HTTP 503"),
    (Raise(server_error(429, "RESOURCE_EXHAUSTED", "quota")), ProviderUnavailable, "rate limit"),
    (
        Raise(server_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid key.")),
        ProviderError,
        "refused the API key",
    ),
    (Raise(server_error(404, "NOT_FOUND", "no such model")), ProviderError, "'gemini-2.5-flash'"),
    (Raise(RuntimeError("internal detail")), ProviderError, "The Gemini agent failed"),
    (ErrorResponse("SAFETY", "blocked"), ProviderError, "safety filters"),
    (Sleep(30), ProviderTimeout, "sent nothing for 0.5 seconds"),
]


@pytest.mark.parametrize(("fault", "kind", "says"), FAULTS)
async def test_faults_are_readable_and_the_next_answer_works(
    make_model: Callable[..., GeminiModel], fault: Any, kind: type[ProviderError], says: str
) -> None:
    model = make_model([Partial("Par"), fault], answer(["Fine."]))
    began = time.monotonic()
    events, error = await run(model, ask("Hello"))
    assert type(error) is kind
    assert says in error.detail
    assert "internal detail" not in error.detail and "Traceback" not in error.detail
    assert text_of(events) == "Par"  # what was written is kept
    assert time.monotonic() - began < 0.5 + 3
    events, error = await run(model, ask("Hello"))
    assert error is None
    assert text_of(events) == "Fine."


async def test_stop_mid_answer_leaves_the_model_usable(
    make_model: Callable[..., GeminiModel],
) -> None:
    slow = [Partial(f"w{index} ") for index in range(200)] + [Final("done")]
    model = make_model(slow, answer(["Next."]))
    llm_of(model).delay = 0.01
    seen: list[AgentEvent] = []

    async def consume() -> None:
        async for event in model.stream(ask("Talk")):
            seen.append(event)

    task = asyncio.create_task(consume())
    await eventually(lambda: len(seen) >= 3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    llm_of(model).delay = 0
    events, error = await run(model, ask("Next?"))
    assert error is None
    assert text_of(events) == "Next."


# -- the real google-genai client, against a scripted Gemini API on loopback ---------


@pytest.fixture
def gemini_api(clean_gemini_env: pytest.MonkeyPatch) -> Iterator[Callable[..., ScriptedGeminiAPI]]:
    servers: list[ScriptedGeminiAPI] = []

    def serve(*replies: ApiReply) -> ScriptedGeminiAPI:
        server = ScriptedGeminiAPI(list(replies)).start()
        servers.append(server)
        clean_gemini_env.setenv("GOOGLE_GEMINI_BASE_URL", server.base_url)
        clean_gemini_env.setenv("GOOGLE_API_KEY", "test-key-not-secret")
        return server

    yield serve
    for server in servers:
        server.stop()


async def test_real_client_streams_grounded_answers_from_the_configured_url(
    gemini_api: Callable[..., ScriptedGeminiAPI], make_settings: Callable[..., Settings]
) -> None:
    api = gemini_api(answer(["Paris ", "is it."], grounded()), ApiStatus(403, "PERMISSION_DENIED"))
    model = build_model(make_settings(model="gemini:gemini-2.5-flash", token_timeout=5))
    try:
        events, error = await run(model, ask("Capital?", "Paris.", "Sure?"))
        assert error is None
        assert text_of(events) == "Paris is it."
        assert SearchSuggestions(CHIP_HTML) in events
        body = api.bodies[0]
        assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
        assert body["tools"] == [{"googleSearch": {}}]
        assert api.requests[0].headers["x-goog-api-key"] == "test-key-not-secret"

        _, error = await run(model, ask("Again"))
        assert isinstance(error, ProviderError)
        assert error.detail == (
            f"The Gemini API at {api.base_url} refused the API key (HTTP 403). "
            "Check GOOGLE_API_KEY."
        )
    finally:
        await model.close()


async def test_real_client_stream_cut_is_readable(
    gemini_api: Callable[..., ScriptedGeminiAPI], make_settings: Callable[..., Settings]
) -> None:
    gemini_api(ApiCut(["Paris ", "is "]))
    model = build_model(make_settings(model="gemini:gemini-2.5-flash", token_timeout=5))
    try:
        events, error = await run(model, ask("Capital?"))
    finally:
        await model.close()
    assert text_of(events) == "Paris is "
    assert isinstance(error, ProviderError)
    assert "cut off" in error.detail


async def test_unreachable_gemini_api_says_so(
    clean_gemini_env: pytest.MonkeyPatch, make_settings: Callable[..., Settings]
) -> None:
    port = free_port()
    clean_gemini_env.setenv("GOOGLE_GEMINI_BASE_URL", f"http://127.0.0.1:{port}")
    clean_gemini_env.setenv("GOOGLE_API_KEY", "test-key-not-secret")
    model = build_model(make_settings(model="gemini:gemini-2.5-flash"))
    try:
        _, error = await run(model, ask("Hi"))
    finally:
        await model.close()
    assert isinstance(error, ProviderUnavailable)
    assert f"Could not reach the Gemini API at http://127.0.0.1:{port} (connection refused)" in (
        error.detail
    )
    assert "test-key-not-secret" not in error.detail


# -- configuration -------------------------------------------------------------------


def test_missing_key_names_the_variable(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigError) as caught:
        build_model(make_settings(model="gemini:gemini-2.5-flash"))
    assert caught.value.variable == "GOOGLE_API_KEY"
    assert "GOOGLE_GENAI_USE_VERTEXAI" in str(caught.value)


@pytest.mark.parametrize(
    "env", [{"GOOGLE_API_KEY": "k"}, {"GEMINI_API_KEY": "k"}, {"GOOGLE_GENAI_USE_VERTEXAI": "true"}]
)
async def test_credentials_from_google_genai_variables(
    env: dict[str, str],
    clean_gemini_env: pytest.MonkeyPatch,
    make_settings: Callable[..., Settings],
) -> None:
    model = build_gemini_model(make_settings(), model="gemini-2.5-pro", env=env)
    try:
        assert model.name == "gemini:gemini-2.5-pro"
    finally:
        await model.close()


def test_missing_extra_names_the_install_command() -> None:
    program = textwrap.dedent(
        """
        import sys
        sys.modules["google.adk"] = None  # as if google-adk were not installed
        from hxchat.config import load_settings
        from hxchat.errors import ConfigError
        from hxchat.providers.registry import build_model
        try:
            build_model(load_settings(model="gemini:gemini-2.5-flash", _env_file=None))
        except ConfigError as exc:
            print(exc)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HXCHAT_", "GOOGLE_"))}
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.stdout.strip() == (
        'HXCHAT_MODEL: gemini: needs the extra: pip install "hxchat[gemini]"'
    )
