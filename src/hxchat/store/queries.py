"""Conversations and turns, as transactions on one connection.

Each public function here is one whole transaction of `SqlStore`, synchronous, run
on the connection it is given (in the SQLite thread, or through `run_sync` on
PostgreSQL). The rules about the conversation lock and the lease are in `leases`,
those about values (titles, sources as JSON) in `records`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection

from hxchat.domain import MessageStatus, ModelChoice, Role, Turn
from hxchat.errors import InvalidMessage, NothingToRetry
from hxchat.store import feedback, files, leases, library, pieces, running, search, tree
from hxchat.store.base import Conversation, ConversationSummary, TurnStarted
from hxchat.store.records import DEFAULT_TITLE, make_title, message_from_row
from hxchat.store.tables import conversations, messages, utcnow

# The statements are built once (see `leases`); their values are bound at execution.

_INSERT_CONVERSATION = insert(conversations)  # values: a dict of columns
_CONVERSATIONS_OF = (  # pinned ones first, each group by last activity (#12)
    select(
        conversations.c.id,
        conversations.c.title,
        conversations.c.updated_at,
        conversations.c.pinned,
    )
    .where(conversations.c.owner == bindparam("owned_by"))
    .order_by(conversations.c.pinned.desc(), conversations.c.updated_at.desc(), conversations.c.id)
    .limit(bindparam("limit"))
)
_CONVERSATION = select(conversations).where(leases.OWNED)
_ACTIVE_GENERATION = (
    select(conversations.c.active_generation_id)
    .where(leases.OWNED)
    .with_for_update()  # a turn starting now waits, then finds it gone
)
_DELETE_CONVERSATION = delete(conversations).where(conversations.c.id == bindparam("conversation"))
_ROLE_AND_PARENT = select(messages.c.role, messages.c.parent_id).where(
    messages.c.id == bindparam("message")
)
_MODEL_OF = select(messages.c.model).where(messages.c.id == bindparam("message"))
_SET_TITLE = (  # from the first message: never over a title the user chose (#12)
    update(conversations)
    .where(
        conversations.c.id == bindparam("conversation"),
        conversations.c.title_source != library.USER,
    )
    .values(title=bindparam("new_title"), title_source=bindparam("source"))
)


def create_conversation(conn: Connection, owner: str) -> str:
    conversation_id = uuid.uuid4().hex
    now = utcnow()
    conn.execute(
        _INSERT_CONVERSATION,
        {
            "id": conversation_id,
            "owner": owner,
            "title": DEFAULT_TITLE,
            "created_at": now,
            "updated_at": now,
            "active_generation_id": None,
        },
    )
    return conversation_id


def list_conversations(conn: Connection, owner: str, limit: int) -> list[ConversationSummary]:
    rows = conn.execute(_CONVERSATIONS_OF, {"owned_by": owner, "limit": limit}).all()
    return [
        ConversationSummary(id=r.id, title=r.title, updated_at=r.updated_at, pinned=r.pinned)
        for r in rows
    ]


def get_conversation(conn: Connection, owner: str, conversation_id: str) -> Conversation | None:
    head = conn.execute(_CONVERSATION, {"conversation": conversation_id, "owned_by": owner}).first()
    if head is None:
        return None
    skeleton = tree.Tree.read(conn, conversation_id)
    rows = tree.path_rows(conn, skeleton.path(head.current_leaf_id))
    streaming = {row.id: row.content for row in rows if row.status == leases.STREAMING}
    texts = pieces.texts(conn, streaming)  # the answer being written, with its checkpoints
    attached = files.of_messages(conn, [row.id for row in rows if row.role == Role.USER.value])
    rated = feedback.of(conn, [row.id for row in rows if row.role == Role.ASSISTANT.value])
    return Conversation(
        id=head.id,
        owner=head.owner,
        title=head.title,
        created_at=head.created_at,
        updated_at=head.updated_at,
        messages=tuple(
            message_from_row(
                row,
                texts.get(row.id),
                skeleton.versions(row.id),
                rated.get(row.id),
                attached.get(row.id, ()),
            )
            for row in rows
        ),
        pinned=head.pinned,
        instructions=head.instructions,
        title_source=head.title_source,
    )


def delete_conversation(conn: Connection, owner: str, conversation_id: str) -> str | None:
    row = conn.execute(
        _ACTIVE_GENERATION, {"conversation": conversation_id, "owned_by": owner}
    ).first()
    if row is None:
        return None
    used = files.release_conversation(conn, conversation_id)
    conn.execute(_DELETE_CONVERSATION, {"conversation": conversation_id})
    files.forget_unlinked(conn, used)  # their contents: `files.take_orphans`
    return str(row.active_generation_id or "")


def start_turn(
    conn: Connection,
    owner: str,
    conversation_id: str,
    content: str,
    generation_id: str,
    worker_id: str,
    lease_seconds: float,
    choice: ModelChoice | None = None,
    model_title: bool = False,
    file_ids: Sequence[str] = (),
    most_running: int | None = None,
) -> TurnStarted:
    running.limit_running(conn, owner, most_running)
    locked = leases.lock(conn, owner, conversation_id, generation_id)
    parent_id = locked.leaf  # the new message follows the path's end
    model = _chosen(conn, choice, parent_id)
    user_message_id = _insert_user_message(conn, conversation_id, content, parent_id)
    names = files.link(conn, owner, user_message_id, file_ids)
    # The path goes on: nothing leaves the index. The message joins it with its answer.
    wants_title = False
    if not locked.asked:  # files only: titled by their names (until the model's title)
        titled = conn.execute(
            _SET_TITLE,
            {
                "conversation": conversation_id,
                "new_title": make_title(content if content.strip() else ", ".join(names)),
                "source": library.PENDING if model_title else library.MESSAGE,
            },
        )
        wants_title = model_title and titled.rowcount == 1
    started = _answer_placeholder(
        conn,
        conversation_id,
        generation_id,
        worker_id,
        lease_seconds,
        user_message_id,
        locked.instructions,
        True,
        model,
    )
    return replace(started, wants_title=wants_title)


def start_edit(
    conn: Connection,
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
    """A new version of a user's message, and a new answer to it: the path now runs
    through them (the old version and what follows it stay)."""
    running.limit_running(conn, owner, most_running)
    row, locked, model = _branch_from(
        conn, owner, message_id, conversation_id, generation_id, choice, Role.USER
    )
    user_message_id = _insert_user_message(conn, row.conversation_id, content, row.parent_id)
    files.copy_links(conn, message_id, user_message_id)  # the new version keeps its files
    started = _answer_placeholder(
        conn,
        row.conversation_id,
        generation_id,
        worker_id,
        lease_seconds,
        user_message_id,
        locked.instructions,
        True,
        model,
    )
    # What followed the edited message leaves the index; the new version joins it with
    # its answer (`leases.release`).
    search.follow_path(conn, row.conversation_id, locked.leaf, row.parent_id)
    return started


def start_regenerate(
    conn: Connection,
    owner: str,
    message_id: int,
    generation_id: str,
    worker_id: str,
    lease_seconds: float,
    conversation_id: str | None = None,
    choice: ModelChoice | None = None,
    most_running: int | None = None,
) -> TurnStarted:
    """A new version of an answer, beside it: the path now runs through the new one
    (what followed the old one stays on its branch)."""
    running.limit_running(conn, owner, most_running)
    row, locked, model = _branch_from(
        conn, owner, message_id, conversation_id, generation_id, choice, Role.ASSISTANT
    )
    started = _answer_placeholder(
        conn,
        row.conversation_id,
        generation_id,
        worker_id,
        lease_seconds,
        row.parent_id,
        locked.instructions,
        False,
        model,
    )
    search.follow_path(conn, row.conversation_id, locked.leaf, started.assistant_message_id)
    return started


_NOT_A_NEW_VERSION = {
    Role.USER: "Only a message you wrote can be edited; regenerate an answer.",
    Role.ASSISTANT: "Only an answer can be regenerated; edit a message instead.",
}


def _branch_from(
    conn: Connection,
    owner: str,
    message_id: int,
    conversation_id: str | None,
    generation_id: str,
    choice: ModelChoice | None,
    role: Role,
) -> tuple[Any, leases.Locked, str | None]:
    """The start of a new version of the message `message_id`, which must be of `role`:
    its row; the conversation, locked for the new answer, as it was (its path's end
    before the new version: the search follows the path from it); the new answer's
    model."""
    row = tree.find_message(conn, owner, message_id, conversation_id)
    if row.role != role.value:
        raise InvalidMessage(_NOT_A_NEW_VERSION[role])
    locked = leases.lock(conn, owner, row.conversation_id, generation_id)
    return row, locked, _chosen(conn, choice, locked.leaf)


def select_version(
    conn: Connection, owner: str, message_id: int, conversation_id: str | None = None
) -> Conversation:
    """The path now runs through this message and, below it, the newest version at
    each step; the conversation as it shows now. `Busy` while an answer is written."""
    row = tree.find_message(conn, owner, message_id, conversation_id)
    skeleton = tree.Tree.read(conn, row.conversation_id)
    old_leaf = tree.leaf(conn, row.conversation_id)
    new_leaf = skeleton.newest_below(row.id)
    tree.select_leaf(conn, owner, row.conversation_id, new_leaf)
    search.follow_path(conn, row.conversation_id, old_leaf, new_leaf)
    conversation = get_conversation(conn, owner, row.conversation_id)
    assert conversation is not None  # found above, in this transaction
    return conversation


def _insert_user_message(
    conn: Connection, conversation_id: str, content: str, parent_id: int | None
) -> int:
    now = utcnow()
    result = conn.execute(
        leases.INSERT_MESSAGE,
        {
            "conversation_id": conversation_id,
            "parent_id": parent_id,
            "role": Role.USER.value,
            "content": content,
            "status": MessageStatus.COMPLETE.value,
            "sources": "[]",
            "created_at": now,
            "updated_at": now,
        },
    )
    return int(result.scalar_one())


def start_retry(
    conn: Connection,
    owner: str,
    conversation_id: str,
    generation_id: str,
    worker_id: str,
    lease_seconds: float,
    choice: ModelChoice | None = None,
    most_running: int | None = None,
) -> TurnStarted:
    running.limit_running(conn, owner, most_running)
    locked = leases.lock(conn, owner, conversation_id, generation_id)
    # The path's last answer gets a new version beside it (the old one is kept); a path
    # that ends with a question gets its answer.
    last = locked.leaf
    row = None if last is None else conn.execute(_ROLE_AND_PARENT, {"message": last}).first()
    parent_id = last if row is not None and row.role == Role.USER.value else None
    if row is not None and row.role == Role.ASSISTANT.value:
        parent_id = row.parent_id
    if parent_id is None:
        raise NothingToRetry()  # rolls the lock back too
    model = _chosen(conn, choice, last)
    started = _answer_placeholder(
        conn,
        conversation_id,
        generation_id,
        worker_id,
        lease_seconds,
        parent_id,
        locked.instructions,
        False,
        model,
    )
    if last is not None and parent_id != last:  # the old answer left the path
        search.remove(conn, [last])
    return started


def _answer_placeholder(
    conn: Connection,
    conversation_id: str,
    generation_id: str,
    worker_id: str,
    lease_seconds: float,
    parent_id: int | None,
    instructions: str,
    after_user_message: bool = False,
    model: str | None = None,
) -> TurnStarted:
    """The streaming assistant message a turn (or a retry, an edit, a regeneration) is
    answered into, following `parent_id`; the conversation's path now ends with it."""
    assistant_message_id = leases.insert_placeholder(
        conn, conversation_id, generation_id, worker_id, lease_seconds, parent_id, model
    )
    tree.set_leaf(conn, conversation_id, assistant_message_id)
    seen = tree.seen_with_files(conn, conversation_id, parent_id)
    return TurnStarted(
        conversation_id=conversation_id,
        generation_id=generation_id,
        assistant_message_id=assistant_message_id,
        user_message_id=parent_id if after_user_message else None,
        # Only ended answers: their checkpoints' pieces are merged into `content` already.
        history=tuple(turn for turn, _ in seen),
        model=model,
        history_files=tuple(f for _, f in seen) if any(f for _, f in seen) else (),
        instructions=instructions,
    )


def _chosen(conn: Connection, choice: ModelChoice | None, leaf: int | None) -> str | None:
    """The model of a new answer (see `ModelChoice`): the conversation goes on with the
    model of the path's last message, `leaf`, unless another one is asked for. None when
    the caller gave no choice."""
    if choice is None:
        return None
    if choice.requested:
        return choice.requested
    inherited = None if leaf is None else conn.scalar(_MODEL_OF, {"message": leaf})
    return choice.resolve(inherited)


def history(conn: Connection, conversation_id: str, before_message_id: int) -> list[Turn]:
    """What the model sees when it answers as `before_message_id` (see `tree.history`)."""
    return tree.history(conn, conversation_id, before_message_id)
