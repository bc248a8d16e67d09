"""ChatGPT's data export (`conversations.json`) read as hxchat conversations.

Each conversation there is a tree of nodes, `mapping` (node id -> {message, parent,
children}), and `current_node`, the end of the path ChatGPT showed. The tree becomes
hxchat's versions: a node's children are versions of one another (an edited question,
a regenerated answer), oldest first by their `create_time`, and the path to
`current_node` is the path the conversation shows.

What is taken, and what is not (docs/api.md, "Import"):

- the text parts of user and assistant messages (`text`, `multimodal_text`), joined
  by blank lines, and the transcript of a voice message (`audio_transcription`; its
  sound is left out); an image or other file among the parts becomes a short note;
- skipped without a trace: empty nodes (`message: null`, the root), system messages,
  nodes ChatGPT hides (`is_visually_hidden_from_conversation`), the custom
  instructions and memory (`user_editable_context`, `model_editable_context`), the
  model's hidden reasoning (`thoughts`, `reasoning_recap`), messages with no text;
- tool steps (a `tool` node: code output, browsing; an assistant message addressed
  to a tool, or of another content type such as `code`) become a one-line note.

hxchat's tree alternates a question and its answer, so the assistant steps that
follow one another in one unbranched run (code, its output, the reply) become one
answer: their texts and notes joined. Where the run branches, the branches stay
separate messages.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from hxchat.domain import Role
from hxchat.library.imported import (
    ImportRefused,
    NewConversation,
    NewMessage,
    check_message_count,
    clean,
    model_of,
    newest_leaf,
    parents_first,
    time_from_epoch,
    title_of,
)
from hxchat.store.records import make_title

_SKIPPED_TYPES = frozenset(
    {"user_editable_context", "model_editable_context", "thoughts", "reasoning_recap"}
)
_TEXT_TYPES = frozenset({"text", "multimodal_text"})
UNTITLED = "Imported from ChatGPT"
ATTACHMENT_NOTE = "*(An image or file from ChatGPT was not imported.)*"
_AUDIO = ("audio_", "real_time_user_audio")  # a voice message's sound: its transcript is taken
_LABEL = re.compile(r"[^\w.-]+")


def is_chatgpt(document: object) -> bool:
    """A list of conversations that each have a `mapping` (or one such conversation)."""
    items = document if isinstance(document, list) else [document]
    return bool(items) and all(isinstance(i, dict) and "mapping" in i for i in items)


def read(document: object) -> list[NewConversation]:
    items = document if isinstance(document, list) else [document]
    seen: set[str] = set()
    conversations = []
    for number, item in enumerate(items, start=1):
        where = f"Conversation {number}"
        key = item.get("conversation_id") or item.get("id")
        if isinstance(key, str):
            if key in seen:
                raise ImportRefused(f"{where} has the id {key!r} of an earlier one.")
            seen.add(key)
        conversation = _conversation(item, where)
        if conversation.messages:
            conversations.append(conversation)
    return conversations


@dataclass(slots=True)
class _Step:
    """A node that becomes (part of) a message."""

    role: Role
    text: str
    node: dict[str, Any]


def _conversation(item: dict[str, Any], where: str) -> NewConversation:
    mapping = item.get("mapping")
    if not isinstance(mapping, dict):
        raise ImportRefused(f"{where} has no 'mapping' of messages.")
    check_message_count(len(mapping), where)
    parent_of: dict[Hashable, Hashable | None] = {}
    message_ids: set[str] = set()
    listed: set[str] = set()
    for key, node in mapping.items():
        if not isinstance(node, dict):
            raise ImportRefused(f"{where}: node {key} is not an object.")
        if node.get("id", key) != key:
            raise ImportRefused(f"{where}: node {key} says its id is {node.get('id')!r}.")
        parent = node.get("parent")
        if parent is not None and not isinstance(parent, str):
            raise ImportRefused(f"{where}: node {key} has a parent that is not a node id.")
        parent_of[key] = parent
        message_id = _object(node.get("message")).get("id")
        if isinstance(message_id, str):
            if message_id in message_ids:
                raise ImportRefused(f"{where}: the message id {message_id} appears twice.")
            message_ids.add(message_id)
        children = node.get("children")
        for child in children if isinstance(children, list) else ():
            if isinstance(child, str):
                if child in listed:
                    raise ImportRefused(f"{where}: node {child} is listed as a child twice.")
                listed.add(child)
    by_time = sorted(mapping, key=lambda key: _time_key(mapping[key]))
    order = parents_first(by_time, parent_of, where)

    # Each kept node's message position; `anchor` is where a node's children attach.
    conversation = NewConversation(
        title=title_of(item.get("title"), ""),
        created_at=time_from_epoch(item.get("create_time")),
        updated_at=time_from_epoch(item.get("update_time")),
    )
    anchor: dict[Hashable, int | None] = {}
    steps: list[_Step] = []
    below: dict[int | None, int] = {}  # kept children per kept step
    parent_step: list[int | None] = []
    for key in order:
        parent = parent_of[key]
        above = None if parent is None else anchor[parent]
        step = _step(mapping[key])
        if step is None:
            anchor[key] = above
            continue
        anchor[key] = len(steps)
        steps.append(step)
        parent_step.append(above)
        below[above] = below.get(above, 0) + 1

    position: list[int] = []  # step -> the message it became part of
    for index, step in enumerate(steps):
        above = parent_step[index]
        if (
            above is not None
            and step.role is Role.ASSISTANT
            and steps[above].role is Role.ASSISTANT
            and below[above] == 1
        ):
            target = conversation.messages[position[above]]
            if step.text != target.content.rsplit("\n\n", 1)[-1]:  # a note said twice
                target.content += "\n\n" + step.text
            target.model = target.model or _model(step)
            position.append(position[above])
            continue
        position.append(len(conversation.messages))
        conversation.messages.append(
            NewMessage(
                role=step.role,
                content=step.text,
                parent=None if above is None else position[above],
                model=_model(step),
                created_at=time_from_epoch(step.node["message"].get("create_time")),
            )
        )
    if not conversation.title:  # untitled: named after its first question, as hxchat does
        first = next((m for m in conversation.messages if m.role is Role.USER), None)
        conversation.title = make_title(first.content) if first else UNTITLED
    current = item.get("current_node")
    end = anchor.get(current) if isinstance(current, str) else None
    conversation.leaf = position[end] if end is not None else newest_leaf(conversation)
    return conversation


def _time_key(node: dict[str, Any]) -> float:
    message = node.get("message")
    value = message.get("create_time") if isinstance(message, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _step(node: dict[str, Any]) -> _Step | None:
    """What a node becomes: a text, a note, or nothing (see the module's docstring)."""
    message = node.get("message")
    if not isinstance(message, dict):
        return None
    author = _object(message.get("author"))
    content = _object(message.get("content"))
    metadata = _object(message.get("metadata"))
    role, kind = _name(author.get("role")), _name(content.get("content_type"))
    if role not in ("user", "assistant", "tool") or kind in _SKIPPED_TYPES:
        return None
    if metadata.get("is_visually_hidden_from_conversation"):
        return None
    to_a_tool = message.get("recipient", "all") != "all"
    if role != "tool" and kind in _TEXT_TYPES and not to_a_tool:
        text = _text(content.get("parts"))
        if not text:
            return None
        return _Step(Role.USER if role == "user" else Role.ASSISTANT, text, node)
    name = author.get("name") if role == "tool" else message.get("recipient")
    label = _LABEL.sub("", name if isinstance(name, str) and name != "all" else kind)
    note = f"*(A {label or 'tool'} tool step from ChatGPT was not imported.)*"
    return _Step(Role.USER if role == "user" else Role.ASSISTANT, note, node)


def _text(parts: object) -> str:
    if not isinstance(parts, list):
        return ""
    texts = []
    for part in parts:
        if isinstance(part, str):
            if part.strip():
                texts.append(clean(part))
            continue
        kind = _name(part.get("content_type")) if isinstance(part, dict) else ""
        if kind == "audio_transcription":  # voice mode: what was said, as text
            said = part.get("text")
            if isinstance(said, str) and said.strip():
                texts.append(clean(said))
        elif not kind.startswith(_AUDIO) and part is not None:
            texts.append(ATTACHMENT_NOTE)
    return "\n\n".join(texts).strip()


def _model(step: _Step) -> str | None:
    if step.role is not Role.ASSISTANT:
        return None
    slug = _object(step.node["message"].get("metadata")).get("model_slug")
    return model_of(f"chatgpt:{slug}") if isinstance(slug, str) and slug else None


def _name(value: object) -> str:
    return value if isinstance(value, str) else ""


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
