"""From rows to the store's records, and the small rules about their values.

Kept apart from the queries in `sql.py` so that the rules (how a title is made from a
message, how sources are kept as JSON) can be read and tested on their own.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

from hxchat.domain import MessageStatus, Role, Source, Timing, Usage
from hxchat.store.base import Feedback, Generation, Message, Rendered, StoredFile

logger = logging.getLogger(__name__)

DEFAULT_TITLE = "New chat"
TITLE_CHARS = 60
ELLIPSIS = "…"

# Markdown punctuation that reads as noise in a title: line marks (headings, quotes,
# list items), emphasis and code ticks, and the URL half of a link. Every branch of
# the inline marks starts with a plain character (a look-behind comes after it), so
# the regex engine skips to the next candidate at once: a long first message is
# titled in a fraction of a millisecond, while the turn that stores it waits.
_LINE_MARKS = re.compile(r"(?m)^[ \t]{0,3}(?:#{1,6}|>|[-*+]|\d+[.)])[ \t]+")
_INLINE_MARKS = re.compile(r"\*\*|__(?<!\S__)|__(?=[\s.,;:!?]|$)|``*|\]\([^)]*\)|\[(?<!\w\[)")


def make_title(content: str, limit: int = TITLE_CHARS) -> str:
    """A conversation's title from its first message: one line, at most `limit` chars.

    Whitespace is collapsed; a longer text is cut at the last word boundary that fits
    and ends with "…" (a single overlong word is cut where it must be).
    """
    plain = _INLINE_MARKS.sub("", _LINE_MARKS.sub("", content))
    text = " ".join(plain.split())  # whitespace collapsed, and stripped
    if not text:
        return DEFAULT_TITLE
    if len(text) <= limit:
        return text
    room = limit - len(ELLIPSIS)
    cut = text[: room + 1]  # one more char shows whether the cut falls between words
    space = cut.rfind(" ")
    head = cut[:space] if space > 0 else text[:room]
    return head.rstrip(" ,;:.-") + ELLIPSIS


def sources_to_json(sources: Iterable[Source]) -> str:
    """The JSON text kept in `messages.sources`."""
    return json.dumps([source.as_json() for source in sources], ensure_ascii=False)


def sources_from_json(raw: str | None) -> tuple[Source, ...]:
    """The sources kept as JSON; a malformed value reads as none (and is logged)."""
    if not raw:
        return ()
    try:
        items = json.loads(raw)
        return tuple(Source(title=str(item["title"]), url=str(item["url"])) for item in items)
    except (ValueError, TypeError, KeyError):
        logger.warning("ignoring malformed sources in the database: %.80r", raw)
        return ()


def message_from_row(
    row: Any,
    content: str | None = None,
    versions: tuple[int, ...] = (),
    feedback: Feedback | None = None,
    files: tuple[StoredFile, ...] = (),
) -> Message:
    """A `Message` from a row of the `messages` table (with `content` as its text, when
    given: a streaming answer's checkpoints are joined to it, see `pieces`; the ids
    of its `versions`, see `tree`; and its `feedback`, see `store.feedback`)."""
    return Message(
        id=row.id,
        parent_id=row.parent_id,
        versions=versions or (row.id,),
        conversation_id=row.conversation_id,
        role=Role(row.role),
        content=row.content if content is None else content,
        status=MessageStatus(row.status),
        sources=sources_from_json(row.sources),
        generation_id=row.generation_id,
        error=row.error,
        search_suggestions=row.search_suggestions,
        created_at=row.created_at,
        model=row.model,
        feedback=feedback,
        usage=usage_from_row(row),
        timing=timing_from_row(row),
        files=files,
        rendered=(
            None
            if row.rendered_html is None or row.rendered_by is None
            else Rendered(row.rendered_html, row.rendered_by)
        ),
    )


def generation_from_row(row: Any, owner: str, content: str | None = None) -> Generation:
    """A `Generation` from a row of the `messages` table and its conversation's owner
    (with `content` as its text, when given, as for `message_from_row`)."""
    return Generation(
        id=row.generation_id,
        owner=owner,
        conversation_id=row.conversation_id,
        message_id=row.id,
        status=MessageStatus(row.status),
        content=row.content if content is None else content,
        sources=sources_from_json(row.sources),
        error=row.error,
        final_event_id=row.final_event_id,
        search_suggestions=row.search_suggestions,
        model=row.model,
        usage=usage_from_row(row),
        timing=timing_from_row(row),
    )


def usage_from_row(row: Any) -> Usage | None:
    """An answer's tokens (each None when not reported); None for a user's message."""
    if row.role != Role.ASSISTANT.value:
        return None
    return Usage(row.input_tokens, row.output_tokens)


def timing_from_row(row: Any) -> Timing | None:
    """An answer's times, when its generation recorded them (not while it streams, nor
    for the answers written before hxchat kept them)."""
    if row.total_ms is None:
        return None
    return Timing(row.first_text_ms, row.total_ms)


def seen_statuses() -> Sequence[str]:
    """The assistant statuses the model sees on the next turn (see `MessageStatus`)."""
    return [status.value for status in MessageStatus if status.seen_by_model]
