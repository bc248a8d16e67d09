"""What ADK's events mean to hxchat: text, the grounding's search and sources,
Google's Search Suggestions chip, the usage of each model turn, and the error codes
with which Gemini ends an answer instead of writing it.

ADK's streaming shape, which this relies on: each chunk is a `partial` event carrying
only its new text, then one final event repeats the whole text (not shown twice here);
on a fault ADK first yields an event with `error_code`/`error_message` and then raises.
Sources come from the grounding metadata (`grounding_chunks`), Google's chip from
`search_entry_point.rendered_content`; usage from the events' `usage_metadata`
(`prompt_token_count`, `candidates_token_count`), the latest of each model turn, given
when the turn ends.
"""

from __future__ import annotations

from google.adk.events import Event
from google.genai import types

from hxchat.domain import (
    AgentEvent,
    SearchSuggestions,
    Source,
    TextDelta,
    ToolCall,
    ToolResult,
    Usage,
)
from hxchat.errors import ProviderError


class EventReader:
    """Turns one answer's ADK events into ours, remembering what it has shown.

    Text: partial events carry the new text; a final (non-partial) event repeats
    the turn's whole text, of which only a part not yet streamed is shown.
    Grounding: the search is announced once, sources are collected without
    duplicates and shown when the model's turn ends, with the suggestions chip.
    """

    def __init__(self) -> None:
        self.error: tuple[str, str] | None = None  # (error_code, error_message)
        self._streamed = ""  # text of the current model turn shown so far
        self._announced = False
        self._sources: dict[str, Source] = {}  # url -> source, in order found
        self._shown = 0  # how many of them have been yielded
        self._chip = ""
        self._chip_shown = ""
        self._usage: Usage | None = None  # the current model turn's, latest reported

    def read(self, event: Event) -> list[AgentEvent]:
        """Our events for one ADK event (an error event is only remembered)."""
        if event.error_code or event.error_message:
            code = getattr(event.error_code, "value", event.error_code)  # may be an enum
            self.error = (str(code or ""), str(event.error_message or ""))
            return []
        out: list[AgentEvent] = []
        self._ground(event.grounding_metadata, out)
        metadata = event.usage_metadata
        if metadata is not None:  # counts so far: a later event's replace an earlier's
            self._usage = Usage(metadata.prompt_token_count, metadata.candidates_token_count)
        text = event_text(event)
        if event.partial:
            if text:
                self._streamed += text
                out.append(TextDelta(text))
            return out
        if text.startswith(self._streamed) and len(text) > len(self._streamed):
            out.append(TextDelta(text[len(self._streamed) :]))
        self._streamed = ""
        if event.content is not None:  # the model's turn has ended
            out.extend(self.flush())
            out.extend(self.usage())
        return out

    def usage(self) -> list[AgentEvent]:
        """The usage of the model turn that ended, if it was reported."""
        usage, self._usage = self._usage, None
        return [usage] if usage is not None else []

    def _ground(self, metadata: types.GroundingMetadata | None, out: list[AgentEvent]) -> None:
        if metadata is None:
            return
        for chunk in metadata.grounding_chunks or ():
            web = chunk.web
            if web is not None and web.uri and web.uri not in self._sources:
                self._sources[web.uri] = Source(web.title or web.domain or web.uri, web.uri)
        queries = [query for query in metadata.web_search_queries or () if query]
        if not self._announced and (queries or self._sources):
            self._announced = True
            out.append(ToolCall("google_search", {"queries": queries}))
        entry = metadata.search_entry_point
        if entry is not None and entry.rendered_content:
            self._chip = entry.rendered_content

    def flush(self) -> list[AgentEvent]:
        """Sources and the chip not yet shown."""
        out: list[AgentEvent] = []
        sources = list(self._sources.values())[self._shown :]
        if sources:
            self._shown += len(sources)
            out.append(ToolResult("google_search", tuple(sources)))
        if self._chip and self._chip != self._chip_shown:
            self._chip_shown = self._chip
            out.append(SearchSuggestions(self._chip))
        return out

    def check(self) -> None:
        """Raise for an error event that no exception followed (e.g. a blocked answer)."""
        if self.error is not None:
            raise stopped(self.error[0])


def event_text(event: Event) -> str:
    if event.content is None or not event.content.parts:
        return ""
    return "".join(part.text for part in event.content.parts if part.text and not part.thought)


def stopped(code: str) -> ProviderError:
    """An answer Gemini ended with an error code instead of text."""
    if code in ("SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY"):
        return ProviderError(f"Gemini blocked this answer with its safety filters ({code}).")
    if code == "RECITATION":
        return ProviderError(
            "Gemini stopped because the answer would repeat protected text (RECITATION)."
        )
    if code == "MAX_TOKENS":
        return ProviderError("Gemini stopped because the answer reached its length limit.")
    return ProviderError(f"Gemini stopped with an error ({code or 'unknown'}). Please try again.")
