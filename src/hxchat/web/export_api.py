"""Export and import in the JSON API (docs/api.md, "Export and import").

- `GET /api/conversations/{id}/export?format=md|json`: one conversation, a download.
- `GET /api/export`: every conversation of the caller, one JSON download, streamed.
- `POST /api/import`: hxchat's export or ChatGPT's `conversations.json`, all or nothing.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from hxchat.errors import HxchatError, NotFound
from hxchat.library import export
from hxchat.library.markdown_export import conversation_markdown
from hxchat.store.sql import SqlStore
from hxchat.store.tables import utcnow
from hxchat.web.deps import OwnerDep, SettingsDep, StoreDep
from hxchat.web.import_upload import import_upload

router = APIRouter()

FORMATS = {"md": ("text/markdown; charset=utf-8", "md"), "json": ("application/json", "json")}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_NOT_IN_NAMES = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


class UnknownFormat(HxchatError):
    status_code = 422
    default_detail = "The format must be md (Markdown) or json."


def download(filename: str) -> dict[str, str]:
    """The headers of a download named after `filename`: an ASCII name every browser
    takes, and the name in UTF-8 for those that read `filename*` (RFC 6266)."""
    cleaned = " ".join(_NOT_IN_NAMES.sub(" ", filename).split()) or "conversation"
    ascii_name = unicodedata.normalize("NFKD", cleaned).encode("ascii", "ignore").decode()
    stem, _, extension = ascii_name.rpartition(".")
    safe_stem = _UNSAFE.sub("-", stem).strip("-.")[:80] or "conversation"
    return {
        "Content-Disposition": (
            f'attachment; filename="{safe_stem}.{extension}"; '
            f"filename*=UTF-8''{quote(cleaned, safe='')}"
        ),
        "Cache-Control": "no-store",
    }


def _sql(store: object) -> SqlStore:
    if not isinstance(store, SqlStore):
        raise HxchatError("Export needs hxchat's SQL store.")
    return store


@router.get("/api/conversations/{conversation_id}/export")
async def export_conversation(
    conversation_id: str,
    store: StoreDep,
    owner: OwnerDep,
    format: Annotated[str, Query()] = "json",
) -> Response:
    if format not in FORMATS:
        raise UnknownFormat()
    found = await _sql(store).run(False, export.conversation, owner, conversation_id)
    if found is None:
        raise NotFound()
    media_type, extension = FORMATS[format]
    if format == "md":
        body = conversation_markdown(found)
    else:
        body = json.dumps({**export.header(), **found}, ensure_ascii=False, indent=1)
    headers = download(f"{found['title'][:80]}.{extension}")
    return Response(body, media_type=media_type, headers=headers)


@router.get("/api/export")
async def export_everything(store: StoreDep, owner: OwnerDep) -> Response:
    filename = f"hxchat-export-{utcnow():%Y-%m-%d}.json"
    return StreamingResponse(
        export.everything(_sql(store), owner),
        media_type="application/json",
        headers=download(filename),
    )


@router.post("/api/import", status_code=201)
async def import_conversations(
    request: Request, store: StoreDep, owner: OwnerDep, settings: SettingsDep
) -> dict[str, int]:
    return {"imported": await import_upload(request, store, owner, settings)}
