"""What an import becomes before anything is written: plain conversations and messages.

Both formats (`hxchat_format`, `chatgpt`) turn a parsed document into a list of
`NewConversation`s, checked whole: a file that breaks a rule is refused with one
readable sentence (`ImportRefused`, 422) before the first row is written, and the
writing (`writing`) is one transaction. So an import lands whole or not at all.

A conversation's messages come parents first, and each names its parent by its
position in that list: the writer gives them new ids in this order, so a parent's id
stays below its children's (`store/tree.py`), and siblings keep their order as
versions (oldest first).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hxchat.domain import MessageStatus, Role, Source
from hxchat.errors import BodyTooLarge, HxchatError
from hxchat.store.base import Feedback
from hxchat.store.feedback import COMMENT_CHARS, RATINGS
from hxchat.store.records import DEFAULT_TITLE, ELLIPSIS

# Counts an import may hold (the file's size is bounded by HXCHAT_MAX_IMPORT_MB).
MAX_CONVERSATIONS = 10_000
MAX_MESSAGES_PER_CONVERSATION = 10_000
MAX_MESSAGES = 200_000
MAX_DEPTH = 64  # JSON nesting; both formats need fewer than 10 levels
TITLE_LIMIT = 200  # the column's width, and PATCH's limit on a title
MODEL_LIMIT = 255


class ImportRefused(HxchatError):
    """The file cannot be imported; `detail` says why, for a person."""

    status_code = 422
    default_detail = "This file cannot be imported."


class ImportTooLarge(BodyTooLarge):
    """The file is over the import limit; refused while it is still arriving."""

    def __init__(self, limit_bytes: int) -> None:
        megabytes = limit_bytes // (1024 * 1024)
        super().__init__(f"The file is too large to import: the limit is {megabytes} MB.")


@dataclass(slots=True)
class NewMessage:
    role: Role
    content: str
    parent: int | None  # the position of its parent in the conversation's list
    status: MessageStatus = MessageStatus.COMPLETE
    sources: tuple[Source, ...] = ()
    model: str | None = None
    error: str | None = None
    created_at: datetime | None = None
    feedback: Feedback | None = None  # an answer's rating and comment


@dataclass(slots=True)
class NewConversation:
    title: str
    messages: list[NewMessage] = field(default_factory=list)
    leaf: int | None = None  # the position of the end of the path it shows
    created_at: datetime | None = None
    updated_at: datetime | None = None


def clean(text: str) -> str:
    """Text as both databases keep it: PostgreSQL refuses the NUL character."""
    return text.replace("\x00", "")


def title_of(value: object, fallback: str = DEFAULT_TITLE) -> str:
    """A title that fits the column: one line, at most 200 characters."""
    text = " ".join(clean(value).split()) if isinstance(value, str) else ""
    if not text:
        return fallback
    return text if len(text) <= TITLE_LIMIT else text[: TITLE_LIMIT - 1] + ELLIPSIS


def model_of(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return clean(value)[:MODEL_LIMIT] or None


def time_from_epoch(value: object) -> datetime | None:
    """ChatGPT's times (seconds since 1970, a float); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    if not 0 <= value < 32_503_680_000:  # before the year 3000
        return None
    return datetime.fromtimestamp(value, UTC)


def time_from_iso(value: object) -> datetime | None:
    """hxchat's times (ISO 8601); None for anything else."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def web_sources(value: object) -> tuple[Source, ...]:
    """The sources that are web links ({"title", "url"} with an http(s) URL); others
    (a `javascript:` URL, a malformed item) are left out, as the page links them."""
    if not isinstance(value, list):
        return ()
    found: list[Source] = []
    for item in value:
        if not isinstance(item, dict):
            continue
        url, title = item.get("url"), item.get("title")
        if isinstance(url, str) and url.lower().startswith(("https://", "http://")):
            title = clean(title) if isinstance(title, str) else ""
            found.append(Source(title=title, url=clean(url)))
    return tuple(found)


def parents_first(
    keys: Sequence[Hashable], parent_of: dict[Hashable, Hashable | None], where: str
) -> list[Hashable]:
    """The keys ordered so that each comes after its parent, siblings in the order of
    `keys`. Refused: a parent that is not among the keys, or a cycle. Iterative (a
    conversation may be thousands of messages deep)."""
    children: dict[Hashable | None, list[Hashable]] = {}
    for key in keys:
        parent = parent_of[key]
        if parent is not None and parent not in parent_of:
            raise ImportRefused(f"{where}: message {key!s} follows {parent!s}, which is not there.")
        children.setdefault(parent, []).append(key)
    order: list[Hashable] = []
    queue = list(reversed(children.get(None, [])))
    while queue:  # depth first, so a branch's messages stay together
        key = queue.pop()
        order.append(key)
        queue.extend(reversed(children.get(key, [])))
    if len(order) != len(keys):
        raise ImportRefused(f"{where}: its messages follow one another in a circle.")
    return order


def newest_leaf(conversation: NewConversation) -> int | None:
    """The end of the path down the newest versions (as `store/tree.py` picks one)."""
    last_child: dict[int | None, int] = {}
    for position, message in enumerate(conversation.messages):
        last_child[message.parent] = position
    current = last_child.get(None)
    while current is not None and current in last_child:
        current = last_child[current]
    return current


def check_counts(conversations: Sequence[NewConversation]) -> None:
    """The limits on counts, each refused with its figure."""
    if not conversations:
        raise ImportRefused("The file holds no conversation to import.")
    if len(conversations) > MAX_CONVERSATIONS:
        raise ImportRefused(
            f"The file holds {len(conversations):,} conversations; "
            f"at most {MAX_CONVERSATIONS:,} can be imported at once."
        )
    total = sum(len(c.messages) for c in conversations)
    if total > MAX_MESSAGES:
        raise ImportRefused(
            f"The file holds {total:,} messages; at most {MAX_MESSAGES:,} can be imported at once."
        )


def check_message_count(count: int, where: str) -> None:
    if count > MAX_MESSAGES_PER_CONVERSATION:
        raise ImportRefused(
            f"{where} has {count:,} messages; a conversation may have at most "
            f"{MAX_MESSAGES_PER_CONVERSATION:,}."
        )


def feedback_of(value: object) -> Feedback | None:
    """An answer's feedback as `GET /api/conversations/{id}` gives it; anything that is
    not a rating (up, down) or a comment is left out."""
    if not isinstance(value, dict):
        return None
    rating = value.get("rating") if value.get("rating") in RATINGS else None
    said = value.get("comment")
    comment = clean(said)[:COMMENT_CHARS] if isinstance(said, str) else ""
    return Feedback(rating, comment or None) if rating or comment else None
