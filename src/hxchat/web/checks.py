"""Checks on what a person sends, before any work starts: one place for the API and
the pages, so both refuse a message with the same status and the same sentence."""

from __future__ import annotations

from collections.abc import Sequence

from hxchat.config import Settings
from hxchat.errors import InvalidMessage, MessageTooLong, NotFound
from hxchat.files.uploads import too_many

MAX_MESSAGE_ID = 2**31 - 1  # the largest id either database keeps in `messages.id`


def checked_message(content: str, settings: Settings, files: Sequence[str] = ()) -> str:
    """The message as it will be stored, or a 413/422 error a person can read. A message
    with files may have no text (#11); it may carry at most
    `HXCHAT_MAX_FILES_PER_MESSAGE` of them."""
    if len(files) > settings.max_files_per_message:
        raise too_many(settings.max_files_per_message)
    limit = settings.max_message_chars
    if len(content) > limit:
        raise MessageTooLong(
            f"The message has {len(content):,} characters; the limit is {limit:,}."
        )
    if not content.strip() and not files:
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
