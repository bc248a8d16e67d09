"""`Files`: uploads kept, read, deleted and swept, and the model's history filled.

It ties the pieces together: the bytes are judged and made safe in a process pool
(`processing`), kept in the storage by owner and SHA-256 (`storage`), and described
in the database (`store/files.py`, on the `SqlStore`). The order of the steps makes a
crash harmless: contents are written before the rows that point at them, and deleted
after the rows that made them orphans are gone (a leftover object is only space).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import timedelta

from hxchat.config import Settings
from hxchat.domain import Attachment, Turn
from hxchat.errors import FileRefused, NotFound
from hxchat.files import processing
from hxchat.files.names import clean_name
from hxchat.files.storage import FileStorage, content_key, open_storage
from hxchat.files.uploads import Limits, Part
from hxchat.store import files as queries
from hxchat.store.base import StoredFile
from hxchat.store.sql import SqlStore
from hxchat.store.tables import utcnow

logger = logging.getLogger(__name__)

UNUSED_FOR = timedelta(days=1)  # a file no message uses is removed after this
PROCESS_TIMEOUT = 60.0  # seconds a file may take to be judged
TEXT_SUFFIX = ".txt"  # a PDF's extracted text, beside it
POOL_WORKERS = 2
# How much lower the pool's processes run than the worker: decoding a 24-megapixel photo
# takes a core for a second or two, which must not come out of the streams' time.
POOL_NICENESS = 10

PARENT_CHECK = 1.0  # seconds between a pool process's looks at whether its worker lives

_pool: ProcessPoolExecutor | None = None


def _start_process(worker: int) -> None:
    """A new pool process: it runs after the worker whenever both want a core (POSIX),
    and ends within `PARENT_CHECK` of the worker (`worker`: its process id) ending by
    any means, even killed outright, instead of waiting for work forever."""
    if hasattr(os, "nice"):
        os.nice(POOL_NICENESS)
    threading.Thread(
        target=_end_with, args=(worker,), name="hxchat-worker-watch", daemon=True
    ).start()


def _end_with(worker: int) -> None:
    while os.getppid() == worker:
        time.sleep(PARENT_CHECK)
    os._exit(0)


def _processes() -> ProcessPoolExecutor:
    """The process pool every app of this process shares, started at first use (spawn:
    a fresh interpreter, never a fork of a process with threads), at a lower priority
    than the worker so that a file being judged never makes the streams late."""
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(
            POOL_WORKERS,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_process,
            initargs=(os.getpid(),),
        )
    return _pool


async def judge(path: str) -> processing.Processed:
    """The stored form of the file at `path`, worked out off the event loop (in the
    process pool, which reads it there); `FileRefused` else."""
    global _pool
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(PROCESS_TIMEOUT):
            outcome = await loop.run_in_executor(_processes(), processing.process_file, path)
    except TimeoutError:
        raise FileRefused("The file took too long to read: hxchat cannot read it.") from None
    except BrokenProcessPool:  # a worker died (out of memory on a hostile file)
        _pool = None
        raise FileRefused("hxchat could not read this file.") from None
    if isinstance(outcome, processing.Refused):
        raise FileRefused(outcome.detail, outcome.status)
    return outcome


class Files:
    """The owner's files: upload, read, delete; their sweep; and the history's attachments."""

    def __init__(self, store: SqlStore, storage: FileStorage, settings: Settings) -> None:
        self.store = store
        self.storage = storage
        self.limits = Limits(
            max_file_bytes=settings.max_file_mb * 1_048_576,
            max_files=settings.max_files_per_message,
            max_field_bytes=settings.max_message_chars * 4 + 1024,
        )

    @classmethod
    def open(cls, store: SqlStore, settings: Settings) -> Files:
        return cls(store, open_storage(settings.files_url), settings)

    async def keep(self, owner: str, part: Part) -> StoredFile:
        """An uploaded file, judged, stored and described; `FileRefused` otherwise."""
        try:
            done = await judge(part.path)
        finally:
            part.discard()
        await self.storage.put(content_key(owner, done.sha256), done.data)
        if done.media_type == processing.PDF and done.text is not None:
            await self.storage.put(content_key(owner, done.sha256, TEXT_SUFFIX), done.text.encode())
        name = clean_name(part.filename)
        return await self.store.run(
            True, queries.add, owner, name, done.media_type, len(done.data), done.sha256
        )

    async def find(self, owner: str, file_id: str) -> StoredFile:
        stored = await self.store.run(False, queries.find, owner, file_id)
        if stored is None:
            raise NotFound(queries.NO_SUCH_FILE)
        return stored

    async def in_share(self, share_key: str, file_id: str) -> StoredFile:
        """A file a share link shows (#12); `NotFound` for any other."""
        stored = await self.store.run(False, queries.in_share, share_key, file_id)
        if stored is None:
            raise NotFound(queries.NO_SUCH_FILE)
        return stored

    async def of_messages(self, message_ids: Sequence[int]) -> dict[int, tuple[StoredFile, ...]]:
        """The files of these messages (a share's page shows them)."""
        return await self.store.run(False, queries.of_messages, message_ids)

    async def content(self, stored: StoredFile) -> bytes:
        data = await self.storage.get(content_key(stored.owner, stored.sha256))
        if data is None:
            raise NotFound("The file's contents are gone.")
        return data

    async def delete(self, owner: str, file_id: str) -> None:
        """Delete a file no message uses (`NotFound`, `Busy` 409 otherwise)."""
        await self.store.run(True, queries.remove, owner, file_id)
        await self.purge(owner)

    async def purge(self, owner: str | None = None) -> int:
        """Delete from the storage the contents no file uses any more (of `owner`, or
        of everyone); how many."""
        removed = 0
        while True:
            orphans = await self.store.run(True, queries.take_orphans, owner)
            for orphan_owner, sha256, media_type in orphans:
                keys = [content_key(orphan_owner, sha256)]
                if media_type == processing.PDF:
                    keys.append(content_key(orphan_owner, sha256, TEXT_SUFFIX))
                await self.storage.delete(keys)
            removed += len(orphans)
            if len(orphans) < 500:
                return removed

    async def sweep(self) -> None:
        """Remove the files no message has used for a day, then orphaned contents."""
        swept = await self.store.run(True, queries.sweep, utcnow() - UNUSED_FOR)
        purged = await self.purge()
        if swept or purged:
            logger.info("swept %d unused files, %d contents", swept, purged)

    async def attach(
        self, history: Sequence[Turn], history_files: Sequence[Sequence[StoredFile]]
    ) -> list[Turn]:
        """`history` with each turn's `attachments` read from the storage (see
        `TurnStarted.history_files`). A file whose content is gone is left out."""
        turns = list(history)
        for index, stored_files in enumerate(history_files):
            if stored_files:
                loaded = await asyncio.gather(*(self.attachment(f) for f in stored_files))
                found = tuple(a for a in loaded if a is not None)
                turns[index] = replace(turns[index], attachments=found)
        return turns

    async def attachment(self, stored: StoredFile) -> Attachment | None:
        """One file as the model gets it: its stored bytes, and its text (a PDF's
        extracted text, a text file's text)."""
        data = await self.storage.get(content_key(stored.owner, stored.sha256))
        if data is None:
            logger.warning("the contents of file %s are gone", stored.id)
            return None
        text: str | None = None
        if stored.media_type == processing.TEXT:
            text = data.decode("utf-8", errors="replace")
        elif stored.media_type == processing.PDF:
            raw = await self.storage.get(content_key(stored.owner, stored.sha256, TEXT_SUFFIX))
            text = "" if raw is None else raw.decode("utf-8", errors="replace")
        return Attachment(name=stored.name, media_type=stored.media_type, data=data, text=text)
