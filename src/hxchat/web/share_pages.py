"""Share links in the browser (#12): the shared page, and the owner's Share controls.

`GET /s/{token}` is the snapshot as a plain page: the same Markdown renderer and the
same strict Content-Security-Policy as the chat, no composer and no controls, nothing
that leads into the owner's routes, readable without JavaScript; not for search engines
(`<meta name="robots">` and `X-Robots-Tag`), nor for caches (a stopped link must be
gone), and its address is never sent on as a referrer. Who may open it is the
middleware's business (`HXCHAT_SHARE`: `anyone` makes `/s/` an open path, `users`
keeps it behind sign-in).

The owner's `Share` and `Stop sharing` are plain forms; with htmx they swap the panel.
These routes exist only while `HXCHAT_SHARE` is not `off`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from hxchat.auth.secrets import digest
from hxchat.domain import Role
from hxchat.errors import NotFound
from hxchat.render import render_markdown
from hxchat.store.files import NO_SUCH_FILE
from hxchat.web.deps import LimitsDep, OwnerDep, TemplatesDep
from hxchat.web.files_api import FILE_ID_CHARS, FilesDep, file_response
from hxchat.web.pages import VARY, is_htmx
from hxchat.web.share_links import SharePanel, SharesDep, absolute, key_of, new_token

router = APIRouter()

NO_SUCH_SHARE = "There is no such shared conversation."
SHARED_HEADERS = {
    "X-Robots-Tag": "noindex",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@router.get("/s/{token}", response_class=HTMLResponse)
async def shared_page(
    token: str, shares: SharesDep, templates: TemplatesDep, files: FilesDep
) -> HTMLResponse:
    key = key_of(token)
    snapshot = await shares.snapshot(key) if key else None
    if snapshot is None:
        raise NotFound(NO_SUCH_SHARE)
    shown = [
        (m, Markup(render_markdown(m.content)) if m.role is Role.ASSISTANT else None)  # noqa: S704 - nh3-sanitised
        for m in snapshot.messages
    ]
    asked = [m.message_id for m in snapshot.messages if m.role is Role.USER]
    page = templates.page(
        "share.html",
        snapshot=snapshot,
        shown=shown,
        title=snapshot.title,
        attached=await files.of_messages(asked),  # their files (#11), served below
        files_url=f"/s/{token}/files/",
    )
    return HTMLResponse(page, headers=SHARED_HEADERS)


@router.get("/s/{token}/files/{file_id}")
async def shared_file(request: Request, token: str, file_id: str, files: FilesDep) -> Response:
    """A file of a shared message (#11), to whoever may open the link and no one else;
    served as `GET /api/files/{id}` serves it, never kept by a cache."""
    key = key_of(token)
    if key is None or len(file_id) > FILE_ID_CHARS:
        raise NotFound(NO_SUCH_FILE)
    stored = await files.in_share(key, file_id)
    return await file_response(request, files, stored, **SHARED_HEADERS)


@router.post("/c/{conversation_id}/share")
async def share(
    request: Request,
    conversation_id: str,
    shares: SharesDep,
    templates: TemplatesDep,
    owner: OwnerDep,
    limits: LimitsDep,
) -> Response:
    """A new link; shown in the panel (htmx), or on the page the redirect leads to."""
    token = new_token()
    async with limits.message(owner, starts_answer=False):  # each share copies the path
        await shares.create(owner, conversation_id, digest(token))
    if not is_htmx(request):
        return RedirectResponse(f"/c/{conversation_id}?shared={token}#share-panel", status_code=303)
    panel = SharePanel(shared=True, url=absolute(request, token))
    return _panel(templates, conversation_id, panel)


@router.post("/c/{conversation_id}/share/stop")
async def stop_sharing(
    request: Request,
    conversation_id: str,
    shares: SharesDep,
    templates: TemplatesDep,
    owner: OwnerDep,
) -> Response:
    await shares.stop(owner, conversation_id)
    if not is_htmx(request):
        return RedirectResponse(f"/c/{conversation_id}#share-panel", status_code=303)
    return _panel(templates, conversation_id, SharePanel())


def _panel(templates: TemplatesDep, conversation_id: str, panel: SharePanel) -> HTMLResponse:
    html = templates.macro("_share.html", "share_panel", conversation_id, panel)
    return HTMLResponse(html, headers=VARY)
