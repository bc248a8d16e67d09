"""What the model sees of a turn, with the contents of its files (#11)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hxchat.domain import Turn
from hxchat.store.base import StoredFile, TurnStarted


class Attacher(Protocol):
    """What reads the files' contents into a history (`Files.attach`)."""

    async def attach(
        self, history: Sequence[Turn], history_files: Sequence[Sequence[StoredFile]]
    ) -> list[Turn]: ...


async def history_of(started: TurnStarted, files: Attacher | None) -> list[Turn]:
    """The history read when the turn was stored; the files of its messages are read
    from the file storage here, outside that transaction, into `Turn.attachments`."""
    if files is None or not started.history_files:
        return list(started.history)
    return await files.attach(started.history, started.history_files)
