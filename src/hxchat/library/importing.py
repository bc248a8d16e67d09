"""An uploaded file to conversations: which format it is, read whole, checked whole.

`conversations_from` is the whole of the checking, CPU work only (the caller runs it
in a thread, off the event loop); `writing.write` then stores what it returns in one
transaction.
"""

from __future__ import annotations

from hxchat.library import chatgpt, document, hxchat_format
from hxchat.library.imported import ImportRefused, NewConversation, check_counts

FOREIGN = (
    "This file is neither an hxchat export nor ChatGPT's conversations.json "
    "(in ChatGPT's data export, import the file conversations.json)."
)


def conversations_from(data: bytes) -> list[NewConversation]:
    """The conversations of the file, or `ImportRefused` with the reason."""
    parsed = document.parse(data)
    if hxchat_format.is_hxchat(parsed):
        conversations = hxchat_format.read(parsed)
    elif chatgpt.is_chatgpt(parsed):
        conversations = chatgpt.read(parsed)
    else:
        raise ImportRefused(FOREIGN)
    check_counts(conversations)
    return conversations
