"""The files routes (#11): upload, download and delete an owner's files.

`POST /api/files` reads its multipart body part by part (`files.uploads`): a file over
`HXCHAT_MAX_FILE_MB` is refused with 413 the moment it grows past the limit. What is
served back can never run in the app's origin: images (re-encoded by hxchat) inline,
everything else as a download, always `nosniff` and a sandboxing policy.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Annotated, Any, cast
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from hxchat.config import Settings
from hxchat.errors import InvalidMessage, NotFound
from hxchat.files.service import Files
from hxchat.files.uploads import read_parts
from hxchat.store.base import StoredFile
from hxchat.store.files import NO_SUCH_FILE
from hxchat.web.deps import OwnerDep

router = APIRouter()

FILE_POLICY = "sandbox; default-src 'none'"
CACHE_CONTROL = "private, max-age=86400"
FILE_ID_CHARS = 32


def upload_limits(settings: Settings) -> dict[str, int]:
    """The security middleware's body limits on the routes that take files: one file
    at its limit (`POST /api/files`), or every file of a message with its text
    (`POST /send`), with room for the multipart framing."""
    per_file = settings.max_file_mb * 1_048_576 + 16_384
    message = settings.max_message_chars * 4 + 65_536
    return {
        "/api/files": per_file + 65_536,
        "/send": settings.max_files_per_message * per_file + message,
    }


async def get_files(request: Request) -> Files:
    return cast(Files, request.app.state.files)


FilesDep = Annotated[Files, Depends(get_files)]


@router.post("/api/files", status_code=201)
async def upload(request: Request, files: FilesDep, owner: OwnerDep) -> dict[str, Any]:
    async with aclosing(read_parts(request, files.limits)) as parts:
        async for part in parts:
            if part.name == "file" and part.filename is not None:
                stored = await files.keep(owner, part)
                return stored.as_json()
            part.discard()  # another field: not read
    raise InvalidMessage("The field 'file' is required.")


@router.get("/api/files/{file_id}")
async def download(request: Request, file_id: str, files: FilesDep, owner: OwnerDep) -> Response:
    if len(file_id) > FILE_ID_CHARS:
        raise NotFound(NO_SUCH_FILE)
    return await file_response(request, files, await files.find(owner, file_id))


async def file_response(
    request: Request, files: Files, stored: StoredFile, **extra_headers: str
) -> Response:
    """A stored file as it is served, wherever from (here, or a share link's)."""
    etag = f'"{stored.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": FILE_POLICY,
        "Cross-Origin-Resource-Policy": "same-origin",
        "Content-Disposition": _disposition(stored.media_type, stored.name),
        **extra_headers,
    }
    if etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    data = await files.content(stored)
    media_type = stored.media_type
    if media_type == "text/plain":
        media_type = "text/plain; charset=utf-8"
    return Response(data, media_type=media_type, headers=headers)


@router.delete("/api/files/{file_id}", status_code=204)
async def delete(file_id: str, files: FilesDep, owner: OwnerDep) -> Response:
    if len(file_id) > FILE_ID_CHARS:
        raise NotFound(NO_SUCH_FILE)
    await files.delete(owner, file_id)
    return Response(status_code=204)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def _disposition(media_type: str, name: str) -> str:
    """`inline` only for images (hxchat wrote their bytes); a download otherwise, named
    by the file's name (an ASCII fallback, and the exact name per RFC 6266)."""
    if media_type.startswith("image/"):
        return "inline"
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
