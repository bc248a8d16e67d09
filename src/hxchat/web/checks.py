"""Checks on what a person sends, before any work starts: one place for the API and
the pages, so both refuse a message with the same status and the same sentence."""

from __future__ import annotations

from hxchat.config import Settings
from hxchat.errors import InvalidMessage, MessageTooLong, NotFound

MAX_MESSAGE_ID = 2**31 - 1  # the largest id either database keeps in `messages.id`


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


def parse_message_id(raw: str) -> int:
    """A message id from a path: anything that cannot be one is a message that does
    not exist (404), as another owner's is."""
    if (
        not raw.isascii()
        or not raw.isdigit()
        or len(raw) > 10
        or not 0 < int(raw) <= MAX_MESSAGE_ID
    ):
        raise NotFound("There is no such message.")
    return int(raw)
