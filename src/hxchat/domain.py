"""The words of the domain: roles, statuses, sources and the events of an answer.

Plain dataclasses and enums, no I/O, so every layer (providers, generation, store,
event log, web) speaks the same types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


class MessageStatus(StrEnum):
    STREAMING = "streaming"
    COMPLETE = "complete"
    STOPPED = "stopped"
    ERROR = "error"
    INTERRUPTED = "interrupted"

    @property
    def is_final(self) -> bool:
        return self is not MessageStatus.STREAMING

    @property
    def seen_by_model(self) -> bool:
        """Answers the model sees again on the next turn (all but `error`: docs/api.md)."""
        return self in (MessageStatus.COMPLETE, MessageStatus.STOPPED, MessageStatus.INTERRUPTED)


@dataclass(frozen=True, slots=True)
class Source:
    """A web page a search tool used: shown as a numbered link under the answer."""

    title: str
    url: str

    def as_json(self) -> dict[str, str]:
        return {"title": self.title, "url": self.url}


def merge_sources(known: list[Source], found: Iterable[Source]) -> bool:
    """Add to `known` the sources of `found` whose URL it lacks, in order; the one
    place where sources are de-duplicated. True when anything was added."""
    seen = {source.url for source in known}
    added = False
    for source in found:
        if source.url not in seen:
            seen.add(source.url)
            known.append(source)
            added = True
    return added


# -- what a model yields ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    """New text of the answer."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The agent started a tool, e.g. `web_search` with `{"query": "..."}`."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A tool finished; `sources` are the pages it found."""

    name: str
    sources: tuple[Source, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchSuggestions:
    """Google's Search Suggestions chip: Google's own HTML, shown only in a sandbox."""

    html: str


@dataclass(frozen=True, slots=True)
class Usage:
    """The tokens one call to the model took, as its provider reported them (None: not
    reported). A model yields one per call, after its text; the OpenAI tool loop makes
    several calls for one answer, whose usage the answer adds up (`+`)."""

    input_tokens: int | None = None
    output_tokens: int | None = None

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            _plus(self.input_tokens, other.input_tokens),
            _plus(self.output_tokens, other.output_tokens),
        )

    def as_json(self) -> dict[str, int | None]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}


def _plus(a: int | None, b: int | None) -> int | None:
    """A sum of counts where None means "not reported" (and stays so only if both are)."""
    return b if a is None else a if b is None else a + b


@dataclass(frozen=True, slots=True)
class Timing:
    """How long an answer took, measured by its generation: from its start to its first
    text (None: it gave none) and to its end, in milliseconds."""

    first_text_ms: int | None
    total_ms: int

    def as_json(self) -> dict[str, int | None]:
        return {"first_text_ms": self.first_text_ms, "total_ms": self.total_ms}


AgentEvent = TextDelta | ToolCall | ToolResult | SearchSuggestions | Usage


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file of a user's message as the model gets it (#11).

    `data` is what the store keeps: an image already re-encoded (no metadata, longest
    side 2,048 px), a PDF as uploaded, a text file's UTF-8 bytes. `text` is what a model
    that cannot read `data` gets instead: a PDF's extracted text, a text file's text;
    None for images.
    """

    name: str
    media_type: str  # the type found from the content: image/png, application/pdf, ...
    data: bytes
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier message as the model sees it."""

    role: Role
    content: str
    attachments: tuple[Attachment, ...] = ()  # a user message's files, in their order


# -- what the event log carries ----------------------------------------------------

# A reader never needs more than 20 updates a second: the browser stream sends at most
# one frame per interval, and the generation merges the text deltas that come within
# one interval into one event of the log (`answering.py`), whatever the model's pace.
FRAME_INTERVAL = 0.05


class EventKind(StrEnum):
    DELTA = "delta"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    DONE = "done"
    ERROR = "error"

    @property
    def is_final(self) -> bool:
        return self in (EventKind.DONE, EventKind.ERROR)


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One event of a generation, as stored in the event log and sent as SSE.

    `id` is the log's own monotonic id (an integer string in memory, a stream entry
    id on Redis): it is the SSE `id:` and the `Last-Event-ID` cursor.
    """

    id: str
    kind: EventKind
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """Which model a new answer is written by: the one asked for, else the one the
    conversation's last answer used (while it is still offered), else the default.
    The store applies it inside the turn's transaction (`resolve`), where it reads
    the conversation's last answer anyway."""

    requested: str | None
    default: str
    offered: frozenset[str]

    def resolve(self, inherited: str | None) -> str:
        if self.requested:
            return self.requested
        if inherited is not None and inherited in self.offered:
            return inherited
        return self.default
