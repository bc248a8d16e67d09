"""A ChatGPT data export's `conversations.json`, built the way ChatGPT writes it (#12).

Each conversation is a `mapping` of nodes (`{id, message, parent, children}`), a root
whose message is null, hidden system and context nodes, versions as sibling nodes,
tool steps as nodes of their own, and `current_node`. Only the shape matters here;
the texts are the tests'.
"""

from __future__ import annotations

import uuid
from typing import Any


class ChatGptConversation:
    """One conversation, grown node by node; `as_json` is what the export holds."""

    def __init__(self, title: str | None, create_time: float = 1_700_000_000.0) -> None:
        self.title = title
        self.create_time = create_time
        self.clock = create_time
        self.mapping: dict[str, dict[str, Any]] = {}
        self.root = self.node(None, None)

    def node(self, parent: str | None, message: dict[str, Any] | None) -> str:
        node_id = message["id"] if message else f"client-created-root-{uuid.uuid4()}"
        self.mapping[node_id] = {
            "id": node_id,
            "message": message,
            "parent": parent,
            "children": [],
        }
        if parent is not None:
            self.mapping[parent]["children"].append(node_id)
        return node_id

    def say(
        self,
        parent: str,
        role: str,
        *parts: Any,
        content_type: str = "text",
        content: dict[str, Any] | None = None,
        hidden: bool = False,
        recipient: str = "all",
        name: str | None = None,
        model: str | None = None,
    ) -> str:
        """A node with a message under `parent`; returns its id."""
        self.clock += 7.5
        metadata: dict[str, Any] = {"citations": [], "request_id": uuid.uuid4().hex}
        if hidden:
            metadata["is_visually_hidden_from_conversation"] = True
        if model:
            metadata["model_slug"] = model
        message = {
            "id": str(uuid.uuid4()),
            "author": {"role": role, "name": name, "metadata": {}},
            "create_time": self.clock,
            "update_time": None,
            "content": content
            if content is not None
            else {"content_type": content_type, "parts": list(parts)},
            "status": "finished_successfully",
            "end_turn": role == "assistant" or None,
            "weight": 1.0,
            "metadata": metadata,
            "recipient": recipient,
            "channel": None,
        }
        return self.node(parent, message)

    def as_json(self, current_node: str) -> dict[str, Any]:
        conversation_id = str(uuid.uuid4())
        return {
            "title": self.title,
            "create_time": self.create_time,
            "update_time": self.clock,
            "mapping": self.mapping,
            "moderation_results": [],
            "current_node": current_node,
            "plugin_ids": None,
            "conversation_id": conversation_id,
            "conversation_template_id": None,
            "gizmo_id": None,
            "is_archived": False,
            "safe_urls": [],
            "default_model_slug": "gpt-4o",
            "id": conversation_id,
        }


IMAGE_PART = {
    "content_type": "image_asset_pointer",
    "asset_pointer": "file-service://file-4kQb8xYz",
    "size_bytes": 182_114,
    "width": 1024,
    "height": 768,
    "fovea": None,
    "metadata": None,
}
