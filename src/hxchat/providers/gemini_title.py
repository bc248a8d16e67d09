"""Gemini writes a conversation's title (#12): one plain, non-streamed generate call.

The call goes to the model itself (`GeminiModel.llm`: Google's API, or a scripted
stand-in in tests), without the agent, its tools or a session: a title needs none of
them, and the answer's grounding must not run again for it. Failures become the same
readable `ProviderError`s as an answer's (`gemini_failure`), never with a key.
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from typing import TYPE_CHECKING

from google.adk.models.llm_request import LlmRequest
from google.genai import types

from hxchat.providers.base import TITLE_PROMPT, title_request
from hxchat.providers.gemini import gemini_failure
from hxchat.providers.gemini_events import EventReader

if TYPE_CHECKING:
    from hxchat.providers.gemini import GeminiModel


async def write_title(model: GeminiModel, question: str, answer: str, timeout: float) -> str:
    """The model's title for the first exchange, as it wrote it, within `timeout`."""
    prompt = types.Part(text=title_request(question, answer))
    request = LlmRequest(
        model=model.model,
        contents=[types.Content(role="user", parts=[prompt])],
        config=types.GenerateContentConfig(system_instruction=TITLE_PROMPT),
    )
    reader = EventReader()  # keeps an error code, as for an answer
    text: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            async with aclosing(model.llm.generate_content_async(request)) as responses:
                async for response in responses:
                    if response.error_code:
                        reader.error = (str(response.error_code), str(response.error_message))
                    if response.partial:  # not asked for; the final one has it all
                        continue
                    parts = response.content.parts if response.content else None
                    text += [p.text for p in parts or () if p.text and not p.thought]
    except Exception as exc:  # one readable sentence, no key
        raise gemini_failure(
            exc,
            reader.error,
            model=model.model,
            where=model.where,
            waited=timeout,
            keys=model._keys,
        ) from None
    reader.check()
    return "".join(text)
