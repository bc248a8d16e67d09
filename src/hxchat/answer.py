"""What one running answer holds so far, and what the store has confirmed of it.

`answering.AnswerWriter` fills it as the model's events are appended to the event log;
the lease supervisor (`supervision.py`) takes its checkpoints from it: only the text
since the last confirmed one, so what reaches the store stays about the answer's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hxchat.domain import MessageStatus, Source, Usage, merge_sources
from hxchat.providers.base import ChatModel
from hxchat.store.base import Checkpoint, TurnStarted


@dataclass
class Answer:
    """What a running generation has produced so far."""

    started: TurnStarted
    owner: str
    parts: list[str] = field(default_factory=list)
    chars: int = 0
    sources: list[Source] = field(default_factory=list)
    suggestions: str | None = None
    model: ChatModel | None = None  # who writes it, chosen when it started (else the default)
    lost: bool = False  # another worker swept it: stop without writing anything
    finishing: bool = False  # its end is being stored: no more checkpoints
    status: MessageStatus = MessageStatus.STREAMING  # how it ended, once it has
    # What the store has confirmed: the text up to this character, this many sources.
    stored_chars: int = 0
    stored_sources: int = 0
    # What it costs: the tokens its model reported, and when it began and first gave
    # text (the event loop's clock); they become its `Timing` when it ends.
    usage: Usage | None = None
    began: float = 0.0
    first_text_ms: int | None = None

    def text(self) -> str:
        """The text so far (its parts are joined once, here, not at every delta)."""
        if len(self.parts) > 1:
            self.parts[:] = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""

    def add_text(self, text: str) -> None:
        self.parts.append(text)
        self.chars += len(text)

    def add_sources(self, sources: Sequence[Source]) -> None:
        merge_sources(self.sources, sources)

    def checkpoint(self) -> Checkpoint:
        """What the store lacks: the text since the last confirmed checkpoint, and the
        sources if they changed. Until the store confirms it, the next checkpoint
        starts at the same place (a lost one is sent again, with what came since)."""
        sources = self.sources
        return Checkpoint(
            generation_id=self.started.generation_id,
            message_id=self.started.assistant_message_id,
            start=self.stored_chars,
            text=self.text()[self.stored_chars :],
            sources=tuple(sources) if len(sources) != self.stored_sources else None,
        )

    def checkpointed(self, checkpoint: Checkpoint) -> None:
        """The store has `checkpoint`: the next one starts where it ends."""
        self.stored_chars = max(self.stored_chars, checkpoint.start + len(checkpoint.text))
        if checkpoint.sources is not None:
            self.stored_sources = max(self.stored_sources, len(checkpoint.sources))
