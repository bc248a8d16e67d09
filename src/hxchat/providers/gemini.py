"""Gemini through a Google ADK agent with Google Search grounding.

An ADK `Agent` with the built-in `google_search` tool, run by ADK's `Runner` with
`StreamingMode.SSE`. Conversation memory is ours, not ADK's: every answer gets a
fresh in-memory ADK session rebuilt from the stored (trimmed) history and dropped
afterwards, so memory survives restarts and any worker can answer.

What ADK's events mean (text, sources from the grounding metadata, Google's Search
Suggestions chip passed on untouched for the web layer to sandbox, usage, the error
codes that end an answer) is `gemini_events.py`.

The client takes its configuration from google-genai's own environment
(GOOGLE_API_KEY or GEMINI_API_KEY, GOOGLE_GEMINI_BASE_URL, GOOGLE_GENAI_USE_VERTEXAI);
no base URL is hard-coded. This module reads those variables only from the mapping
the providers' registry gives it (to check for credentials, to name the endpoint in
errors and to keep the key out of them). `google-adk` is the optional extra
`hxchat[gemini]`: the registry reports it missing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from urllib.parse import urlsplit

from google.adk.agents import Agent, RunConfig
from google.adk.agents.readonly_context import ReadonlyContext
from google.adk.events import Event
from google.adk.models.base_llm import BaseLlm
from google.adk.models.google_llm import Gemini
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.adk.tools.google_search_tool import GoogleSearchTool
from google.genai import errors as genai_errors
from google.genai import types

from hxchat.config import Settings
from hxchat.domain import (
    AgentEvent,
    Role,
    Turn,
)
from hxchat.errors import ConfigError, ProviderError, ProviderTimeout, ProviderUnavailable
from hxchat.providers.base import system_prompt
from hxchat.providers.gemini_events import EventReader, stopped
from hxchat.providers.gemini_files import INLINE_BUDGET_BYTES, FilesApi, RequestContents
from hxchat.providers.history import trim_history
from hxchat.providers.search import connection_reason

logger = logging.getLogger(__name__)

APP_NAME = "hxchat"
AGENT_NAME = "hxchat"  # ADK reads events by this author as the model's own turns
USER_ID = "hxchat"
INSTRUCTIONS = "hxchat_instructions"  # the session state's key for the instructions


#: the variables that may hold a Gemini API key
KEY_VARIABLES = ("GOOGLE_API_KEY", "GEMINI_API_KEY")


def build_gemini_model(settings: Settings, *, model: str, env: Mapping[str, str]) -> GeminiModel:
    """The `gemini:<model>` agent configured by the GOOGLE_*/GEMINI_* variables in `env`
    (given by the providers' registry); raises `ConfigError` when no credentials are set."""
    if not _vertex(env) and not api_keys(env):
        raise ConfigError(
            "GOOGLE_API_KEY",
            "gemini: needs a Gemini API key: set GOOGLE_API_KEY, or use Vertex AI with "
            "GOOGLE_GENAI_USE_VERTEXAI=true",
        )
    return GeminiModel(settings, llm=model, env=env)


class GeminiModel:
    """A Gemini ADK agent; `llm` is a model name or any ADK `BaseLlm` (tests script one).

    `env` holds the provider's variables (see `build_gemini_model`); none by default.
    Files too big to go inline go through `files`: by default the Files API of the
    Gemini client (none on Vertex AI, nor for a scripted `llm`).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        llm: BaseLlm | str,
        env: Mapping[str, str] | None = None,
        files: FilesApi | None = None,
        inline_budget: int = INLINE_BUDGET_BYTES,
    ) -> None:
        env = env or {}
        model = Gemini(model=llm) if isinstance(llm, str) else llm
        if files is None and isinstance(model, Gemini) and not _vertex(env):
            files = FilesApi(lambda: model.api_client)
        self.files = files
        self.inline_budget = inline_budget
        self.llm: BaseLlm = model  # what ADK calls: Google's API, or a scripted stand-in
        self.model = model.model
        self.name = f"gemini:{self.model}"
        self.grounding = settings.search != "none"
        self.system_prompt = settings.system_prompt
        self.history_budget = settings.history_budget_chars
        self.first_token_timeout = settings.first_token_timeout
        self.token_timeout = settings.token_timeout
        self.where = gemini_where(env)
        self._keys = api_keys(env)  # to keep them out of error messages
        self._sessions = InMemorySessionService()
        agent = Agent(
            name=AGENT_NAME,
            model=model,
            # A callable, so ADK does not treat `{…}` in the prompt as state variables.
            instruction=self._instruction,
            tools=[GoogleSearchTool()] if self.grounding else [],
            disallow_transfer_to_parent=True,
            disallow_transfer_to_peers=True,
        )
        self._runner = Runner(app_name=APP_NAME, agent=agent, session_service=self._sessions)

    def _instruction(self, context: ReadonlyContext) -> str:
        """The system prompt of this answer: the conversation's instructions (#10) ride
        in its session's state, since the agent is shared by every answer."""
        return system_prompt(self.system_prompt, str(context.state.get(INSTRUCTIONS, "")))

    async def stream(
        self, history: Sequence[Turn], *, instructions: str = ""
    ) -> AsyncIterator[AgentEvent]:
        """Answer the last user turn of `history`, grounded in Google Search."""
        turns = trim_history(history, self.history_budget)
        if not turns or turns[-1].role is not Role.USER:
            return
        contents = await self._contents(turns)
        session = await self._sessions.create_session(
            app_name=APP_NAME,
            user_id=USER_ID,
            session_id=f"answer-{uuid.uuid4().hex}",
            state={INSTRUCTIONS: instructions},
        )
        try:
            for content in contents[:-1]:
                await self._sessions.append_event(session, _history_event(content))
            events = self._runner.run_async(
                user_id=USER_ID,
                session_id=session.id,
                new_message=contents[-1],
                # StreamingMode.SSE, by its value: ADK exports the enum from no public module.
                run_config=RunConfig.model_validate({"streaming_mode": "sse"}),
            )
            async for event in self._read(events):
                yield event
        finally:
            await self._sessions.delete_session(
                app_name=APP_NAME, user_id=USER_ID, session_id=session.id
            )

    async def _contents(self, turns: Sequence[Turn]) -> list[types.Content]:
        """The turns as Gemini contents, files included (uploaded where they must be)."""
        request = RequestContents(self.files, self.inline_budget)
        try:
            return [await request.content(turn) for turn in turns]
        except Exception as exc:  # an upload that failed, as one readable sentence
            raise gemini_failure(
                exc, None, model=self.model, where=self.where, waited=0, keys=self._keys
            ) from None

    async def _read(self, events: AsyncGenerator[Event, None]) -> AsyncIterator[AgentEvent]:
        """ADK events -> our events, with the timeouts and errors mapped."""
        reader = EventReader()
        waited = self.first_token_timeout
        try:
            async with aclosing(events) as stream:
                while True:
                    try:
                        async with asyncio.timeout(waited):
                            event = await anext(stream)
                    except StopAsyncIteration:
                        break
                    waited = self.token_timeout
                    for out in reader.read(event):
                        yield out
        except Exception as exc:  # any failure of the agent becomes one readable sentence
            raise gemini_failure(
                exc,
                reader.error,
                model=self.model,
                where=self.where,
                waited=waited,
                keys=self._keys,
            ) from None
        reader.check()
        for out in reader.flush():
            yield out
        for out in reader.usage():
            yield out

    async def title(self, question: str, answer: str, timeout: float) -> str:
        """A title for the conversation (#12): `gemini_title.write_title`."""
        from hxchat.providers.gemini_title import write_title

        return await write_title(self, question, answer, timeout)

    async def close(self) -> None:
        """Close the runner (its toolsets, plugins and session service)."""
        await self._runner.close()


def _history_event(content: types.Content) -> Event:
    return Event(
        invocation_id="history",
        author="user" if content.role == "user" else AGENT_NAME,
        content=content,
    )


def _vertex(env: Mapping[str, str]) -> bool:
    """Whether google-genai is told to use Vertex AI (which needs no API key)."""
    return any(
        env.get(name, "").strip().lower() in ("1", "true")
        for name in ("GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_ENTERPRISE")
    )


def api_keys(env: Mapping[str, str]) -> tuple[str, ...]:
    """The Gemini API keys set in `env`."""
    return tuple(key for name in KEY_VARIABLES if (key := env.get(name, "").strip()))


def gemini_where(env: Mapping[str, str]) -> str:
    """Who answers, as errors name it: "the Gemini API", maybe with its URL; never a key."""
    if _vertex(env):
        return "Vertex AI"
    parts = urlsplit(env.get("GOOGLE_GEMINI_BASE_URL", "").strip())
    if parts.scheme and parts.hostname:
        port = f":{parts.port}" if parts.port else ""
        return f"the Gemini API at {parts.scheme}://{parts.hostname}{port}"
    return "the Gemini API"


def gemini_failure(
    exc: Exception,
    error: tuple[str, str] | None,
    *,
    model: str,
    where: str,
    waited: float,
    keys: Sequence[str],
) -> ProviderError:
    """Whatever the agent raised, as a sentence for a person (no key, no trace)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    code = error[0] if error else None
    logger.info("gemini:%s failed: %s (error code %s)", model, type(exc).__name__, code)
    who = where[0].upper() + where[1:]
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, TimeoutError) or "TimeoutException" in names:
        return ProviderTimeout(f"{who} sent nothing for {waited:g} seconds. Please try again.")
    if isinstance(exc, genai_errors.APIError):
        return _api_failure(exc.code, str(exc.message or exc.status or ""), model, who, keys)
    if "ConnectError" in names or isinstance(exc, ConnectionRefusedError):
        return ProviderUnavailable(
            f"Could not reach {where} ({connection_reason(exc)}). "
            "Check the network, or GOOGLE_GEMINI_BASE_URL."
        )
    if {"TransportError", "NetworkError", "ProtocolError"} & names or isinstance(
        exc, ConnectionError
    ):
        return ProviderError(
            f"The connection to {where} was cut off in the middle of the answer. Please try again."
        )
    if error is not None and error[0] and not error[0].endswith("Error"):
        return stopped(error[0])
    return ProviderError(
        f"The Gemini agent failed ({type(exc).__name__}). Please try again; if it keeps "
        "failing, check the server log."
    )


def _api_failure(
    code: int, message: str, model: str, who: str, keys: Sequence[str]
) -> ProviderError:
    if code in (401, 403) or (code == 400 and "api key" in message.lower()):
        return ProviderError(f"{who} refused the API key (HTTP {code}). Check GOOGLE_API_KEY.")
    if code == 404:
        return ProviderError(
            f"{who} does not know the model '{model}' (HTTP 404). "
            "Check the model name in HXCHAT_MODEL."
        )
    if code == 429:
        return ProviderUnavailable(
            f"{who} is rate limiting requests or the quota is used up (HTTP 429). "
            "Wait a moment and try again."
        )
    if code >= 500:
        return ProviderUnavailable(f"{who} failed (HTTP {code}). Please try again in a moment.")
    detail = f": {_redact(message, keys)[:200]}" if message else ""
    return ProviderError(f"{who} refused the request (HTTP {code}{detail}).")


def _redact(text: str, keys: Sequence[str]) -> str:
    """Google's error text, minus any API key that might be quoted in it."""
    for key in keys:
        text = text.replace(key, "[key]")
    return text.rstrip(".")
