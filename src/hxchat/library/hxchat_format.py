"""hxchat's own export read back: the JSON of `GET /api/export` (many conversations)
or of `GET /api/conversations/{id}/export?format=json` (one).

The ids in the file only link messages to their parents; the import gives everything
new ids. Only what a person wrote or read is taken: text, roles, versions, sources,
models, statuses, times and the feedback on answers. Nothing that steers the server
is (generation ids, leases, Google's search-suggestion HTML). An answer that was still
being written when the file was made arrives `interrupted`, as after a restart.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from hxchat.domain import MessageStatus, Role
from hxchat.library.imported import (
    ImportRefused,
    NewConversation,
    NewMessage,
    check_message_count,
    clean,
    feedback_of,
    model_of,
    newest_leaf,
    parents_first,
    time_from_iso,
    title_of,
    web_sources,
)

FORMAT = "hxchat"
VERSION = 1
_STATUSES = {status.value: status for status in MessageStatus}
_STATUSES[MessageStatus.STREAMING.value] = MessageStatus.INTERRUPTED
_ROLES = {role.value: role for role in Role}


def is_hxchat(document: object) -> bool:
    return isinstance(document, dict) and document.get("format") == FORMAT


def read(document: dict[str, Any]) -> list[NewConversation]:
    """The conversations of an hxchat export (its envelope, or one conversation)."""
    version = document.get("version")
    if version != VERSION:
        raise ImportRefused(
            f"This hxchat export is of version {version!r}; this hxchat reads version {VERSION}."
        )
    if "conversations" not in document:
        return [_conversation(document, "The conversation")]
    items = document["conversations"]
    if not isinstance(items, list):
        raise ImportRefused("The export's 'conversations' is not a list.")
    seen: set[Hashable] = set()
    conversations = []
    for number, item in enumerate(items, start=1):
        where = f"Conversation {number}"
        key = item.get("id") if isinstance(item, dict) else None
        if isinstance(key, str):
            if key in seen:
                raise ImportRefused(f"{where} has the id {key!r} of an earlier one.")
            seen.add(key)
        conversations.append(_conversation(item, where))
    return conversations


def _conversation(item: object, where: str) -> NewConversation:
    if not isinstance(item, dict) or not isinstance(item.get("messages"), list):
        raise ImportRefused(f"{where} is not an hxchat conversation (it has no 'messages' list).")
    items: list[Any] = item["messages"]
    check_message_count(len(items), where)
    by_key: dict[Hashable, dict[str, Any]] = {}
    parent_of: dict[Hashable, Hashable | None] = {}
    for number, message in enumerate(items, start=1):
        if not isinstance(message, dict):
            raise ImportRefused(f"{where}: message {number} is not an object.")
        key = _key(message.get("id"), f"{where}: message {number}")
        if key in by_key:
            raise ImportRefused(f"{where}: the message id {key!s} appears twice.")
        by_key[key] = message
        parent = message.get("parent_id")
        parent_of[key] = None if parent is None else _key(parent, f"{where}: message {key!s}")
    order = parents_first(list(by_key), parent_of, where)
    position = {key: index for index, key in enumerate(order)}
    conversation = NewConversation(
        title=title_of(item.get("title")),
        created_at=time_from_iso(item.get("created_at")),
        updated_at=time_from_iso(item.get("updated_at")),
    )
    for key in order:
        parent = parent_of[key]
        conversation.messages.append(
            _message(by_key[key], None if parent is None else position[parent], f"{where}")
        )
    current = item.get("current_message_id")
    hashable = isinstance(current, int | str) and not isinstance(current, bool)
    leaf = position.get(current) if hashable else None
    conversation.leaf = leaf if leaf is not None else newest_leaf(conversation)
    return conversation


def _key(value: object, where: str) -> Hashable:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ImportRefused(f"{where} has no id (a number or a string).")
    return value


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _message(message: dict[str, Any], parent: int | None, where: str) -> NewMessage:
    role = _ROLES.get(_text(message.get("role")))
    if role is None:
        raise ImportRefused(
            f"{where}: message {message['id']!s} has the role {message.get('role')!r}; "
            "hxchat knows user and assistant."
        )
    content = message.get("content")
    if not isinstance(content, str):
        raise ImportRefused(f"{where}: message {message['id']!s} has no text ('content').")
    status = _STATUSES.get(_text(message.get("status")), MessageStatus.COMPLETE)
    error = message.get("error")
    return NewMessage(
        role=role,
        content=clean(content),
        parent=parent,
        status=status if role is Role.ASSISTANT else MessageStatus.COMPLETE,
        sources=web_sources(message.get("sources")),
        model=model_of(message.get("model")) if role is Role.ASSISTANT else None,
        error=clean(error) if isinstance(error, str) and status is MessageStatus.ERROR else None,
        created_at=time_from_iso(message.get("created_at")),
        feedback=feedback_of(message.get("feedback")) if role is Role.ASSISTANT else None,
    )
