"""The store's interface and the records it returns.

The store is the truth for history; the event log is the truth for a generation in
flight. Every query that a request makes is scoped to the owner (the session's opaque
id): a conversation of another owner is exactly as absent as one that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from hxchat.domain import MessageStatus, ModelChoice, Role, Source, Timing, Turn, Usage


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    id: str
    title: str
    updated_at: datetime
    pinned: bool = False


@dataclass(frozen=True, slots=True)
class Feedback:
    """What the owner said of an answer (#12)."""

    rating: str | None  # "up", "down", or None (a comment alone)
    comment: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {"rating": self.rating, "comment": self.comment}


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file of an owner (#11): its metadata; its bytes are in the file storage under
    (`owner`, `sha256`), see `hxchat.files`."""

    id: str
    owner: str
    name: str
    media_type: str
    size: int
    sha256: str

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "type": self.media_type, "size": self.size}


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A message that a search found (`Store.search`), with plain text around the match."""

    conversation_id: str
    title: str
    message_id: int
    snippet: str


@dataclass(frozen=True, slots=True)
class Rendered:
    """A finished answer's HTML as hxchat's renderer made it from the answer's text
    (sanitised), and which renderer that was (`render.markdown.RENDERER`). Only the
    server writes it (`Store.keep_rendered`), from the renderer's own output."""

    html: str
    renderer: str


@dataclass(frozen=True, slots=True)
class KeptHtml:
    """What `Store.keep_rendered` writes: `html` rendered by `renderer` from `content`,
    kept only while the answer has ended and still has exactly that text."""

    message_id: int
    content: str
    rendered: Rendered


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    conversation_id: str
    role: Role
    content: str
    status: MessageStatus
    sources: tuple[Source, ...] = ()
    generation_id: str | None = None
    error: str | None = None
    search_suggestions: str | None = None
    created_at: datetime | None = None
    parent_id: int | None = None  # the message it follows; None for a first message
    # It and its siblings, oldest first (see `store/tree.py`); () when not known here.
    versions: tuple[int, ...] = ()
    model: str | None = None  # the model that wrote an answer (None: not recorded)
    files: tuple[StoredFile, ...] = ()  # a user's message's attachments, in order
    feedback: Feedback | None = None  # an answer's rating and comment, when it has one
    usage: Usage | None = None  # a finished answer's tokens (None: a user's message)
    timing: Timing | None = None  # a finished answer's times (None: not recorded)
    rendered: Rendered | None = None  # a finished answer's HTML, when the store keeps it


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    owner: str
    title: str
    created_at: datetime
    updated_at: datetime
    messages: tuple[Message, ...] = ()  # the path it shows, first message first
    pinned: bool = False
    instructions: str = ""  # added to the system prompt of its answers ("" for none)
    # Who wrote the title: "message", "pending" (the model is writing one), "model",
    # "user" (see `store/library.py`).
    title_source: str = "message"

    @property
    def title_pending(self) -> bool:
        """The model is writing this conversation's title (the page waits for it)."""
        return self.title_source == "pending"


@dataclass(frozen=True, slots=True)
class Generation:
    """An assistant message seen as the generation that writes it."""

    id: str
    owner: str
    conversation_id: str
    message_id: int
    status: MessageStatus
    content: str
    sources: tuple[Source, ...] = ()
    error: str | None = None
    final_event_id: str | None = None
    search_suggestions: str | None = None
    model: str | None = None  # the model writing it (None: not recorded)
    usage: Usage | None = None  # as for `Message`
    timing: Timing | None = None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What one checkpoint adds to a running answer in the store: the text written
    since the last checkpoint the store confirmed, which begins at character `start`
    of the answer, and the sources when they changed since then (None: unchanged).

    Sent again from the same `start` (a checkpoint that failed, or whose commit
    succeeded but whose reply was lost), it replaces what it overlaps: the store keeps
    the longer text at one `start`, so a repeated checkpoint never doubles text.
    """

    generation_id: str
    message_id: int  # the answer's message (the row the lease and the text are kept in)
    start: int
    text: str
    sources: tuple[Source, ...] | None = None


@dataclass(frozen=True, slots=True)
class TurnStarted:
    """What `start_turn` / `start_retry` / `start_edit` / `start_regenerate` created."""

    conversation_id: str
    generation_id: str
    assistant_message_id: int
    user_message_id: int | None  # None for a retry or a regeneration
    # What the model sees (`Store.history` before the placeholder), read in the same
    # transaction, so that the answer starts without another trip to the database.
    history: tuple[Turn, ...] = ()
    model: str | None = None  # the model chosen for the answer (None: no choice given)
    instructions: str = ""  # the conversation's, for the system prompt (#10)
    # The first answer of a conversation whose title the model is to write once it has
    # ended (`titles.py`): the conversation's title is "pending" until then.
    wants_title: bool = False
    # The files of each turn of `history`, in the same order (() when none has any):
    # `hxchat.files.Files.attach` reads their contents into `Turn.attachments`.
    history_files: tuple[tuple[StoredFile, ...], ...] = ()


class Store(Protocol):
    """Conversations and messages. Raises `StoreUnavailable` when the database is down."""

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the database answers."""

    async def close(self) -> None: ...

    async def secret_key(self, candidate: str) -> str:
        """The shared signing key: `candidate` is kept if none is stored yet (race-safe)."""

    async def create_conversation(self, owner: str) -> str:
        """A new, empty conversation; returns its id."""

    async def list_conversations(self, owner: str, limit: int = 200) -> list[ConversationSummary]:
        """The owner's conversations, last activity first."""

    async def get_conversation(self, owner: str, conversation_id: str) -> Conversation | None:
        """One conversation with the messages of the path it shows, first message first
        (each with its versions), or None (absent or foreign)."""

    async def search(self, owner: str, query: str) -> list[SearchHit]:
        """The owner's messages and titles that have every word of `query` (whole or
        as a prefix, accents folded), best first, at most 50; the messages of the path
        each conversation shows, answers once they have ended (`store/search.py`)."""

    async def delete_conversation(self, owner: str, conversation_id: str) -> str | None:
        """Delete it with its messages. Returns the id of a generation that was running
        in it (the caller stops it), "" when none was, None when there was no such
        conversation."""

    async def start_turn(
        self,
        owner: str,
        conversation_id: str,
        content: str,
        generation_id: str,
        worker_id: str,
        lease_seconds: float,
        choice: ModelChoice | None = None,
        model_title: bool = False,
        files: Sequence[str] = (),
        most_running: int | None = None,
    ) -> TurnStarted:
        """Store the user's message and an assistant placeholder (status streaming) at once,
        and return them with the history the model sees (`history`). `files` are ids of
        the owner's files that the message carries, in order (`NotFound` for any other).

        Sets the conversation's title from its first message, unless the user named it;
        with `model_title`, that title is marked "pending" (the model writes one once
        the answer has ended: `TurnStarted.wants_title`). Raises `NotFound`, or
        `Busy` while another generation of the conversation is streaming (atomic: two
        concurrent calls never both succeed). With `most_running`, all four starts
        raise `TooManyRequests` while the owner has that many answers being written
        (atomic too, `store.running`).
        """

    async def start_retry(
        self,
        owner: str,
        conversation_id: str,
        generation_id: str,
        worker_id: str,
        lease_seconds: float,
        choice: ModelChoice | None = None,
        most_running: int | None = None,
    ) -> TurnStarted:
        """A new version of the path's last answer (the old one is kept), as a new
        placeholder. Raises `NotFound`, `Busy`, or `NothingToRetry` when the
        conversation has no user message."""

    async def start_edit(
        self,
        owner: str,
        message_id: int,
        content: str,
        generation_id: str,
        worker_id: str,
        lease_seconds: float,
        conversation_id: str | None = None,
        choice: ModelChoice | None = None,
        most_running: int | None = None,
    ) -> TurnStarted:
        """A new version of the user's message `message_id` with `content`, and a
        placeholder answering it; the path runs through them. Raises `NotFound` (not
        the owner's, or not of `conversation_id` when given), `InvalidMessage` for an
        answer, `Busy`."""

    async def start_regenerate(
        self,
        owner: str,
        message_id: int,
        generation_id: str,
        worker_id: str,
        lease_seconds: float,
        conversation_id: str | None = None,
        choice: ModelChoice | None = None,
        most_running: int | None = None,
    ) -> TurnStarted:
        """A new version of the answer `message_id`, as a placeholder beside it; the
        path runs through it. Raises `NotFound`, `InvalidMessage` for a user's
        message, `Busy`."""

    async def select_version(
        self, owner: str, message_id: int, conversation_id: str | None = None
    ) -> Conversation:
        """The path now runs through `message_id` and, below it, the newest version at
        each step; returns the conversation as it shows now. Raises `NotFound`,
        `Busy` while an answer of the conversation is being written."""

    async def history(self, conversation_id: str, before_message_id: int) -> list[Turn]:
        """What the model sees when it answers as `before_message_id`: the user messages
        and the answers whose status is seen by the model (complete, stopped,
        interrupted) on the path above it, oldest first (for an id that is no message
        of the conversation: the path ending at its latest message below that id)."""

    async def get_generation(
        self, generation_id: str, owner: str | None = None
    ) -> Generation | None:
        """The generation, scoped to `owner` unless it is None (internal callers)."""

    async def checkpoint_many(
        self,
        checkpoints: Sequence[Checkpoint],
        worker_id: str,
        lease_seconds: float,
    ) -> set[str]:
        """Add what each running answer wrote since its last checkpoint (text and
        changed sources, see `Checkpoint`) and renew their leases, all in one
        transaction (a worker writes all its answers once a second). A streaming
        answer read from the store has its checkpoints' text. Returns the ids no longer
        streaming under `worker_id` (swept, finished, deleted): their caller must stop
        them, and nothing was written for them."""

    async def finish(
        self,
        generation_id: str,
        *,
        content: str,
        status: MessageStatus,
        sources: Sequence[Source],
        error: str | None,
        search_suggestions: str | None,
        final_event_id: str | None,
        worker_id: str | None,
        usage: Usage | None = None,
        timing: Timing | None = None,
    ) -> bool:
        """Store the final answer (`content` is its whole text, which replaces what its
        checkpoints added, with its `usage` and `timing`) and release the conversation.
        With a `worker_id`, only while that worker still holds it; False when nothing
        was updated."""

    async def keep_rendered(self, kept: Sequence[KeptHtml]) -> None:
        """Keep each answer's HTML with it, unless it is streaming, its text is no
        longer the one rendered, or it already has HTML by that renderer."""

    async def sweep_expired(
        self, include_live: bool = False, spare_worker: str | None = None
    ) -> list[Generation]:
        """Mark streaming answers whose lease has expired `interrupted` (keeping their
        text up to their last checkpoint), release their conversations, and return
        them. `include_live` takes every streaming answer: only for a single process
        starting up on the in-memory event log, where nothing else can be running
        them. The answers of
        `spare_worker` (the sweeping worker itself, alive by definition) are spared."""
