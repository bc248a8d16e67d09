"""The one model interface.

Given the conversation so far (ending with the user's newest message), a model yields
typed events: `TextDelta`, `ToolCall`, `ToolResult`, `SearchSuggestions`, `Usage` (the
tokens of each call to the model, when its provider reports them), and nothing else.
Failures are raised as `ProviderError` (or a subclass) whose text a person can read; it
never contains an API key or a stack trace.

A conversation's instructions (#10) come with each answer and go into the system
prompt (`system_prompt`). A model that can also write a conversation's title (#12)
has `title` (`TitleWriter`, a capability: the echo model has none).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

from hxchat.domain import AgentEvent, Turn


class ChatModel(Protocol):
    #: e.g. "echo", "openai:gpt-4o-mini"; shown in logs and metrics.
    name: str

    def stream(
        self, history: Sequence[Turn], *, instructions: str = ""
    ) -> AsyncIterator[AgentEvent]:
        """Answer the last user turn of `history`, streaming; `instructions` are the
        conversation's, added to the system prompt ("" for none)."""

    async def close(self) -> None:
        """Release clients and connections."""


@runtime_checkable
class TitleWriter(Protocol):
    """A model that can title a conversation from its first exchange (#12)."""

    async def title(self, question: str, answer: str, timeout: float) -> str:
        """A few words naming the conversation, as the model wrote them (the caller
        cleans them); one short request, not streamed, within `timeout` seconds.
        Raises `ProviderError` when the model fails or takes longer."""


TITLE_PROMPT = (
    "Write a title for the conversation below: at most six words, in the language of "
    "the conversation, without quotes, punctuation at the end or Markdown. Reply with "
    "the title only."
)
TITLE_INPUT_CHARS = 2_000  # of the question and of the answer: a title needs no more


def title_request(question: str, answer: str) -> str:
    """What a model is asked to title: the first exchange, each side cut short."""
    return f"User: {question[:TITLE_INPUT_CHARS]}\n\nAssistant: {answer[:TITLE_INPUT_CHARS]}"


def system_prompt(base: str, instructions: str) -> str:
    """The system prompt of one answer: hxchat's, then the conversation's instructions."""
    if not instructions.strip():
        return base
    return (
        f"{base}\n\nThe user gave these instructions for this conversation; follow them:\n"
        f"{instructions.strip()}"
    )
