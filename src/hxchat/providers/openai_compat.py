"""Any model that speaks OpenAI's Chat Completions: OpenAI, Ollama, vLLM, llama.cpp, LM Studio.

The official `openai` SDK streams the answer; hxchat offers the model one function
tool, `web_search(query)`, and runs the tool loop itself (a bounded number of
rounds, the last one without tools), so the search backend is ours to choose and
every step shows up as an event. Our own timeouts (first token, then between
chunks) hold because the SDK's retries are off. Every failure becomes a
`ProviderError` that says which server, what happened and what to try; the API key
never appears in it.

Usage is asked for with `stream_options: {"include_usage": true}` (a last chunk with
the call's tokens). Some servers refuse that option (a 4xx that names it): the request
is then sent once more without it, and the model's client remembers not to ask its
endpoint again; its answers then have no usage.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from urllib.parse import urlsplit

import openai
from openai import AsyncOpenAI, AsyncStream, Omit, omit
from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionMessageParam,
    ChatCompletionStreamOptionsParam,
)

from hxchat.config import Settings
from hxchat.domain import (
    AgentEvent,
    Role,
    Source,
    TextDelta,
    ToolCall,
    ToolResult,
    Turn,
    Usage,
)
from hxchat.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from hxchat.providers.base import TITLE_PROMPT, system_prompt, title_request
from hxchat.providers.catalogue import takes_images
from hxchat.providers.history import trim_history
from hxchat.providers.openai_content import user_content
from hxchat.providers.openai_endpoint import endpoint
from hxchat.providers.openai_tools import (
    WEB_SEARCH_TOOL,
    PendingCall,
    number_new,
    search_query,
    tool_reply,
)
from hxchat.providers.search import (
    WebSearch,
    build_search,
    connection_reason,
)

logger = logging.getLogger(__name__)

SEARCH_RESULTS = 5

_KEYLIKE = re.compile(r"(sk-|Bearer\s+)[A-Za-z0-9_\-*.]{4,}")
INCLUDE_USAGE: ChatCompletionStreamOptionsParam = {"include_usage": True}


def build_openai_model(
    settings: Settings, *, provider: str, model: str, env: Mapping[str, str]
) -> OpenAICompatModel:
    """The `openai:`/`ollama:` model the settings and the variables in `env` describe
    (given by the providers' registry; see `endpoint`)."""
    where = endpoint(settings, provider, env)
    name = f"{provider}:{model}"
    return OpenAICompatModel(
        model,
        base_url=where.base_url,
        api_key=where.api_key,
        settings=settings,
        search=build_search(settings),
        name=name,
        sees_images=takes_images(name, settings.vision_patterns),
    )


class OpenAICompatModel:
    """A Chat Completions model with hxchat's `web_search` tool loop; a user's files
    go as `openai_content` makes them (images only when `sees_images`)."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str,
        settings: Settings,
        search: WebSearch | None = None,
        name: str | None = None,
        sees_images: bool = False,
    ) -> None:
        self.name = name or f"openai:{model}"
        self.model = model
        #: images go to it as images (HXCHAT_VISION_MODELS), else as a note
        self.sees_images = sees_images
        self.search = search
        self.system_prompt = settings.system_prompt
        self.history_budget = settings.history_budget_chars
        self.max_tool_rounds = settings.max_tool_rounds
        self.first_token_timeout = settings.first_token_timeout
        self.token_timeout = settings.token_timeout
        parts = urlsplit(base_url)
        port = f":{parts.port}" if parts.port else ""
        #: where the model lives, as shown to people: no path, never credentials.
        self.where = f"{parts.scheme}://{parts.hostname}{port}"
        self._api_key = api_key
        #: the endpoint refused `stream_options` once: it is not asked for usage again
        self.refuses_usage = False
        self._client = AsyncOpenAI(
            base_url=base_url,
            api_key=api_key,
            max_retries=0,  # our timeouts must hold; the user has a Retry button
            timeout=max(self.first_token_timeout, self.token_timeout) + 5,
        )

    async def stream(
        self, history: Sequence[Turn], *, instructions: str = ""
    ) -> AsyncIterator[AgentEvent]:
        """Answer the last user turn, searching the web when the model asks to."""
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": system_prompt(self.system_prompt, instructions)}
        ]
        for turn in trim_history(history, self.history_budget):
            if turn.role is Role.USER:
                content = user_content(turn, sees_images=self.sees_images)
                messages.append({"role": "user", "content": content})
            else:
                messages.append({"role": "assistant", "content": turn.content})
        numbers: dict[str, int] = {}  # url -> the [n] the model was given
        bad_calls = 0
        for round_ in range(self.max_tool_rounds + 1):
            offer_tools = self.search is not None and round_ < self.max_tool_rounds
            calls: dict[int, PendingCall] = {}
            text: list[str] = []
            async for delta in self._round(messages, offer_tools, calls, text):
                yield delta
            if not calls or not offer_tools:
                return
            pending = [calls[index] for index in sorted(calls)]
            for number, call in enumerate(pending):
                call.id = call.id or f"call_{round_}_{number}"
            messages.append(
                {
                    "role": "assistant",
                    "content": "".join(text) or None,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": call.arguments},
                        }
                        for call in pending
                    ],
                }
            )
            for call in pending:
                query = search_query(call)
                if query is None:
                    bad_calls += 1
                    if bad_calls > 1:
                        raise ProviderError(
                            f"The model at {self.where} asked for a web search with malformed "
                            "arguments again; please try again, or use a model with better "
                            "tool support."
                        )
                    reply = (
                        f"Error: the call to {call.name or 'a tool'} was not valid. The only "
                        'tool is web_search; call it with JSON arguments {"query": "..."}.'
                    )
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": reply})
                    continue
                yield ToolCall("web_search", {"query": query})
                assert self.search is not None
                hits = await self.search.search(query, SEARCH_RESULTS)
                new = number_new(hits, numbers)
                yield ToolResult("web_search", tuple(Source(h.title or h.url, h.url) for h in new))
                reply = tool_reply(hits, new, numbers)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": reply})

    async def _round(
        self,
        messages: list[ChatCompletionMessageParam],
        offer_tools: bool,
        calls: dict[int, PendingCall],
        text: list[str],
    ) -> AsyncIterator[TextDelta | Usage]:
        """One streamed completion: yields text, then its usage when the server reports
        it; collects tool calls into `calls`."""
        stream: AsyncStream[ChatCompletionChunk] | None = None
        waited = self.first_token_timeout
        usage: Usage | None = None
        try:
            async with asyncio.timeout(self.first_token_timeout):
                stream = await self._open(messages, offer_tools)
                chunk = await _next_chunk(stream)
            waited = self.token_timeout
            while chunk is not None:
                if chunk.usage is not None:
                    reported = chunk.usage
                    usage = Usage(reported.prompt_tokens, reported.completion_tokens)
                for choice in chunk.choices[:1]:
                    if choice.delta.content:
                        text.append(choice.delta.content)
                        yield TextDelta(choice.delta.content)
                    for tool_call in choice.delta.tool_calls or ():
                        pending = calls.setdefault(tool_call.index, PendingCall())
                        pending.id = tool_call.id or pending.id
                        function = tool_call.function
                        if function and function.name and function.name != pending.name:
                            pending.name += function.name
                        if function and function.arguments:
                            pending.arguments += function.arguments
                async with asyncio.timeout(self.token_timeout):
                    chunk = await _next_chunk(stream)
            if usage is not None:
                yield usage
        except TimeoutError:
            raise ProviderTimeout(self._silent(waited, started=stream is not None)) from None
        except openai.APIStatusError as exc:
            raise self._status_error(exc) from None
        except openai.APITimeoutError:
            raise ProviderTimeout(self._silent(waited, started=stream is not None)) from None
        except openai.APIConnectionError as exc:
            logger.info("%s: connection failed: %s", self.name, connection_reason(exc))
            if stream is not None:
                raise self._cut_off() from None
            raise ProviderUnavailable(
                f"Could not reach the model at {self.where} ({connection_reason(exc)}). "
                "Is the server running?"
            ) from None
        except openai.APIError as exc:
            logger.info("%s: stream failed: %s", self.name, type(exc).__name__)
            if exc.body is None:
                raise self._cut_off() from None
            # An error event inside the stream (e.g. `data: {"error": {...}}`).
            detail = self._redact(str(exc.message or "no reason given"))[:200].rstrip(".")
            raise ProviderError(
                f"The model at {self.where} stopped with an error in the middle of the "
                f"answer ({detail}). Please try again."
            ) from None
        finally:
            if stream is not None:
                await stream.close()

    async def title(self, question: str, answer: str, timeout: float) -> str:
        """A title for the conversation (#12): one normal, non-streamed chat completion
        without tools, bounded by `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                completion = await self._client.chat.completions.create(
                    model=self.model,
                    messages=[
                        {"role": "system", "content": TITLE_PROMPT},
                        {"role": "user", "content": title_request(question, answer)},
                    ],
                    timeout=timeout,
                )
        except (TimeoutError, openai.APITimeoutError):
            raise ProviderTimeout(self._silent(timeout, started=False)) from None
        except openai.APIStatusError as exc:
            raise self._status_error(exc) from None
        except openai.APIError as exc:
            logger.info("%s: title request failed: %s", self.name, type(exc).__name__)
            raise ProviderUnavailable(f"The model at {self.where} could not be asked.") from None
        choices = completion.choices
        return (choices[0].message.content or "") if choices else ""

    async def _open(
        self, messages: list[ChatCompletionMessageParam], offer_tools: bool
    ) -> AsyncStream[ChatCompletionChunk]:
        """Start the completion, asking for usage unless the endpoint refused that once;
        when it refuses now, ask once more without it (and remember)."""
        options: ChatCompletionStreamOptionsParam | Omit = (
            omit if self.refuses_usage else INCLUDE_USAGE
        )
        while True:
            try:
                return await self._client.chat.completions.create(
                    model=self.model,
                    messages=messages,
                    stream=True,
                    stream_options=options,
                    tools=[WEB_SEARCH_TOOL] if offer_tools else omit,
                )
            except openai.APIStatusError as exc:
                if options is omit or not _refuses_stream_options(exc):
                    raise
                logger.info("%s: the server refuses stream_options; not asked again", self.name)
                self.refuses_usage = True
                options = omit

    def _silent(self, seconds: float, *, started: bool) -> str:
        what = "sent nothing for" if started else "did not answer within"
        unit = "second" if seconds == 1 else "seconds"
        return (
            f"The model at {self.where} {what} {seconds:g} {unit}; it may be busy or "
            "still loading the model. Please try again."
        )

    def _cut_off(self) -> ProviderError:
        return ProviderError(
            f"The connection to the model at {self.where} was cut off in the middle of the "
            "answer. Please try again."
        )

    def _status_error(self, exc: openai.APIStatusError) -> ProviderError:
        status = exc.status_code
        logger.info("%s: HTTP %s", self.name, status)
        if status in (401, 403):
            return ProviderError(
                f"The API key was refused by the model at {self.where} (HTTP {status}). "
                "Check OPENAI_API_KEY."
            )
        if status == 404:
            hint = (
                f" (with Ollama: ollama pull {self.model})"
                if self.name.startswith("ollama:")
                else ""
            )
            return ProviderError(
                f"The model '{self.model}' was not found at {self.where} (HTTP 404). Check the "
                f"model name in HXCHAT_MODEL{hint}, and that OPENAI_BASE_URL ends in /v1."
            )
        if status == 429:
            return ProviderUnavailable(
                f"The model at {self.where} is rate limiting requests (HTTP 429). "
                "Wait a moment and try again."
            )
        if status >= 500:
            return ProviderUnavailable(
                f"The model's server at {self.where} failed (HTTP {status}). "
                "Please try again in a moment."
            )
        detail = self._redact(str(exc.message or ""))[:200]
        return ProviderError(
            f"The model at {self.where} refused the request (HTTP {status}: {detail})."
        )

    def _redact(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "[key]")
        return _KEYLIKE.sub("[key]", text)

    async def close(self) -> None:
        """Close the HTTP client and the search backend."""
        await self._client.close()
        if self.search is not None:
            await self.search.close()


async def _next_chunk(stream: AsyncStream[ChatCompletionChunk]) -> ChatCompletionChunk | None:
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return None


def _refuses_stream_options(exc: openai.APIStatusError) -> bool:
    """A client error (4xx) that names `stream_options`: the server does not know it."""
    said = f"{exc.message} {exc.body}".lower()
    return 400 <= exc.status_code < 500 and "stream_options" in said
