"""Checks on what a person sends, before any work starts: one place for the API and
the pages, so both refuse a message with the same status and the same sentence."""

from __future__ import annotations

from hxchat.config import Settings
from hxchat.errors import InvalidMessage, MessageTooLong


def checked_message(content: str, settings: Settings) -> str:
    """The message as it will be stored, or a 413/422 error a person can read."""
    limit = settings.max_message_chars
    if len(content) > limit:
        raise MessageTooLong(
            f"The message has {len(content):,} characters; the limit is {limit:,}."
        )
    if not content.strip():
        raise InvalidMessage("The message is empty.")
    return content
