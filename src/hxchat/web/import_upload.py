"""Receiving an import: the file from a form or a request body, counted as it arrives,
then checked in a thread and written in one transaction.

Two ways in, so that both a plain HTML form and a program can import: a
`multipart/form-data` body with the file in the field `file` (the settings page's
form, `curl -F file=@conversations.json`; a form with one file under another name
works too), or the file itself as the body
(`curl --data-binary @conversations.json -H 'Content-Type: application/json'`).

A file over `HXCHAT_MAX_IMPORT_MB` is refused with 413 before it is read whole: at
once when `Content-Length` says so, else as soon as that many bytes have arrived. The
security middleware lets bodies up to twice that through on these paths (a form adds
a little around the file), so that this module, not the generic limit, says what the
limit is.
"""

from __future__ import annotations

import asyncio

from fastapi import Request
from starlette.datastructures import UploadFile

from hxchat.config import Settings
from hxchat.errors import HxchatError
from hxchat.library import importing, writing
from hxchat.library.imported import ImportRefused, ImportTooLarge
from hxchat.store.base import Store
from hxchat.store.sql import SqlStore

IMPORT_PATHS = ("/api/import", "/settings/import")
FORM_FIELD = "file"
_CHUNK = 1024 * 1024


def import_limit(settings: Settings) -> int:
    """The largest file an import takes, in bytes."""
    return settings.max_import_mb * 1024 * 1024


def import_body_limits(settings: Settings) -> dict[str, int]:
    """The security middleware's body limit on the import paths (see above)."""
    return dict.fromkeys(IMPORT_PATHS, 2 * import_limit(settings) + 65_536)


async def read_upload(request: Request, limit: int) -> bytes:
    """The file's bytes, from a form's `file` field or from the whole body."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + 65_536:
        raise ImportTooLarge(limit)
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        return await _from_form(request, limit)
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise ImportTooLarge(limit)
    return bytes(received)


async def _from_form(request: Request, limit: int) -> bytes:
    async with request.form(max_files=1, max_fields=8) as form:
        upload = form.get(FORM_FIELD)
        if not isinstance(upload, UploadFile):  # a program that named its field otherwise
            upload = next((v for v in form.values() if isinstance(v, UploadFile)), None)
        if upload is None:
            raise ImportRefused(f"Choose a file to import (the form field {FORM_FIELD!r}).")
        data = bytearray()
        while chunk := await upload.read(_CHUNK):
            data += chunk
            if len(data) > limit:
                raise ImportTooLarge(limit)
        return bytes(data)


async def import_upload(request: Request, store: Store, owner: str, settings: Settings) -> int:
    """Import the request's file for `owner`, all or nothing; how many conversations."""
    if not isinstance(store, SqlStore):
        raise HxchatError("Importing needs hxchat's SQL store.")
    data = await read_upload(request, import_limit(settings))
    # A file is parsed whole: its objects take several times its size, so a worker
    # checks and writes one import at a time (the others wait their turn).
    async with _import_turn(request):
        # Parsing and checking many megabytes is CPU work: off the event loop.
        conversations = await asyncio.to_thread(importing.conversations_from, data)
        del data
        ids = await store.run(True, writing.write, owner, conversations)
    return len(ids)


def _import_turn(request: Request) -> asyncio.Lock:
    """This app's one lock for imports (made on first use, in the app's event loop)."""
    state = request.app.state
    if getattr(state, "import_turn", None) is None:
        state.import_turn = asyncio.Lock()
    lock: asyncio.Lock = state.import_turn
    return lock
