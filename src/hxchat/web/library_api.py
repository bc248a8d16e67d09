"""`PATCH /api/conversations/{id}`: rename, pin, instructions (#12, #10).

The same checks serve the page's forms (`web/library_pages.py`), so both refuse a
title or instructions with the same status and the same sentence.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr

from hxchat.errors import InvalidMessage, MessageTooLong, NotFound
from hxchat.store.library import Changes
from hxchat.web.api import conversation_json
from hxchat.web.deps import LibraryDep, ModelsDep, OwnerDep, StoreDep

router = APIRouter()

MAX_TITLE_CHARS = 200  # the `conversations.title` column's length
MAX_INSTRUCTIONS_CHARS = 4_000


class ConversationPatch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    title: StrictStr | None = None
    pinned: StrictBool | None = None
    instructions: StrictStr | None = None


def checked_title(raw: str) -> str:
    """A title as it is kept: one line, whitespace collapsed, 1 to 200 characters (422)."""
    title = " ".join(raw.split())
    if not title:
        raise InvalidMessage("The title is empty.")
    if len(title) > MAX_TITLE_CHARS:
        raise InvalidMessage(
            f"The title has {len(title):,} characters; the limit is {MAX_TITLE_CHARS}."
        )
    return title


def checked_instructions(raw: str) -> str:
    """Instructions as they are kept (trimmed; "" clears them), or 413 over the limit."""
    instructions = raw.strip()
    if len(instructions) > MAX_INSTRUCTIONS_CHARS:
        raise MessageTooLong(
            f"The instructions have {len(instructions):,} characters; "
            f"the limit is {MAX_INSTRUCTIONS_CHARS:,}."
        )
    return instructions


@router.patch("/api/conversations/{conversation_id}")
async def patch_conversation(
    conversation_id: str,
    body: ConversationPatch,
    library: LibraryDep,
    store: StoreDep,
    owner: OwnerDep,
    models: ModelsDep,
) -> dict[str, Any]:
    """Any of `title`, `pinned`, `instructions`; the conversation as `GET` shows it."""
    if body.title is None and body.pinned is None and body.instructions is None:
        raise InvalidMessage("Send at least one of title, pinned or instructions.")
    changes = Changes(
        title=None if body.title is None else checked_title(body.title),
        pinned=body.pinned,
        instructions=None if body.instructions is None else checked_instructions(body.instructions),
    )
    if not await library.change(owner, conversation_id, changes):
        raise NotFound()
    conversation = await store.get_conversation(owner, conversation_id)
    if conversation is None:  # deleted in the meantime
        raise NotFound()
    return conversation_json(conversation, models)
