"""The one model interface.

Given the conversation so far (ending with the user's newest message), a model yields
typed events: `TextDelta`, `ToolCall`, `ToolResult`, `SearchSuggestions`, `Usage` (the
tokens of each call to the model, when its provider reports them), and nothing else.
Failures are raised as `ProviderError` (or a subclass) whose text a person can read; it
never contains an API key or a stack trace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from hxchat.domain import AgentEvent, Turn


class ChatModel(Protocol):
    #: e.g. "echo", "openai:gpt-4o-mini"; shown in logs and metrics.
    name: str

    def stream(self, history: Sequence[Turn]) -> AsyncIterator[AgentEvent]:
        """Answer the last user turn of `history`, streaming."""

    async def close(self) -> None:
        """Release clients and connections."""
