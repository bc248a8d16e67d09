"""Any model that speaks OpenAI's Chat Completions: OpenAI, Ollama, vLLM, llama.cpp, LM Studio.

The official `openai` SDK streams the answer; hxchat offers the model one function
tool, `web_search(query)`, and runs the tool loop itself (a bounded number of
rounds, the last one without tools), so the search backend is ours to choose and
every step shows up as an event. Our own timeouts (first token, then between
chunks) hold because the SDK's retries are off. Every failure becomes a
`ProviderError` that says which server, what happened and what to try; the API key
never appears in it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import openai
from openai import AsyncOpenAI, AsyncStream, omit
from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionMessageParam,
    ChatCompletionToolUnionParam,
)

from hxchat.config import Settings
from hxchat.domain import AgentEvent, Role, Source, TextDelta, ToolCall, ToolResult, Turn
from hxchat.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from hxchat.providers.base import TITLE_PROMPT, system_prompt, title_request
from hxchat.providers.catalogue import takes_images
from hxchat.providers.history import trim_history
from hxchat.providers.openai_content import user_content
from hxchat.providers.openai_endpoint import endpoint
from hxchat.providers.search import (
    SearchHit,
    WebSearch,
    build_search,
    connection_reason,
    format_results,
)

logger = logging.getLogger(__name__)

SEARCH_RESULTS = 5

WEB_SEARCH_TOOL: ChatCompletionToolUnionParam = {
    "type": "function",
    "function": {
        "name": "web_search",
        "description": (
            "Search the web for current or factual information. Returns numbered "
            "results (title, URL, snippet); cite them in the answer as [n]."
        ),
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "what to search for"}},
            "required": ["query"],
        },
    },
}

_KEYLIKE = re.compile(r"(sk-|Bearer\s+)[A-Za-z0-9_\-*.]{4,}")


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


@dataclass
class _PendingCall:
    """A tool call as its deltas arrive: id and name once, arguments in pieces."""

    id: str = ""
    name: str = ""
    arguments: str = ""


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
            calls: dict[int, _PendingCall] = {}
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
                query = _query(call)
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
                new = _number(hits, numbers)
                yield ToolResult("web_search", tuple(Source(h.title or h.url, h.url) for h in new))
                reply = _tool_reply(hits, new, numbers)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": reply})

    async def _round(
        self,
        messages: list[ChatCompletionMessageParam],
        offer_tools: bool,
        calls: dict[int, _PendingCall],
        text: list[str],
    ) -> AsyncIterator[TextDelta]:
        """One streamed completion: yields text, collects tool calls into `calls`."""
        stream: AsyncStream[ChatCompletionChunk] | None = None
        waited = self.first_token_timeout
        try:
            async with asyncio.timeout(self.first_token_timeout):
                stream = await self._client.chat.completions.create(
                    model=self.model,
                    messages=messages,
                    stream=True,
                    tools=[WEB_SEARCH_TOOL] if offer_tools else omit,
                )
                chunk = await _next_chunk(stream)
            waited = self.token_timeout
            while chunk is not None:
                for choice in chunk.choices[:1]:
                    if choice.delta.content:
                        text.append(choice.delta.content)
                        yield TextDelta(choice.delta.content)
                    for tool_call in choice.delta.tool_calls or ():
                        pending = calls.setdefault(tool_call.index, _PendingCall())
                        pending.id = tool_call.id or pending.id
                        function = tool_call.function
                        if function and function.name and function.name != pending.name:
                            pending.name += function.name
                        if function and function.arguments:
                            pending.arguments += function.arguments
                async with asyncio.timeout(self.token_timeout):
                    chunk = await _next_chunk(stream)
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


def _query(call: _PendingCall) -> str | None:
    """The search query of a well-formed `web_search` call, else None."""
    if call.name != "web_search":
        return None
    try:
        arguments: Any = json.loads(call.arguments or "{}")
    except ValueError:
        return None
    query = arguments.get("query") if isinstance(arguments, dict) else None
    return query.strip() if isinstance(query, str) and query.strip() else None


def _number(hits: Sequence[SearchHit], numbers: dict[str, int]) -> list[SearchHit]:
    """Give each new page the next number; pages seen in an earlier round keep theirs."""
    new = []
    for hit in hits:
        if hit.url not in numbers:
            numbers[hit.url] = len(numbers) + 1
            new.append(hit)
    return new


def _tool_reply(
    hits: Sequence[SearchHit], new: Sequence[SearchHit], numbers: dict[str, int]
) -> str:
    """The tool message: numbered snippets, numbering continued across rounds."""
    if not hits:
        return "No results."
    reply = format_results(new, start=numbers[new[0].url]) if new else ""
    again = sorted({numbers[hit.url] for hit in hits} - {numbers[hit.url] for hit in new})
    if again:
        listed = ", ".join(f"[{number}]" for number in again)
        reply += ("\n\n" if reply else "") + f"Also found again: {listed} (see above)."
    return reply
