"""`/admin`: the users, what they have used, and disabling or enabling one.

Only for admins (`hxchat users add NAME --admin`); for anyone else, and in mode `none`,
every route here is 404, exactly as a missing page. Plain forms that work without
JavaScript; the cross-site refusal of `web.security` guards their POSTs. Disabling a
user ends their sessions and API tokens on every worker within a second.
"""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hxchat.auth.identity import Identity
from hxchat.errors import NotFound
from hxchat.store.directory import UserDirectory
from hxchat.web.account_pages import form_page
from hxchat.web.deps import IdentityDep, TemplatesDep

router = APIRouter()

SELF = "You cannot disable your own account here (use `hxchat users disable`)."


def _admin(request: Request, identity: Identity | None) -> Identity:
    if not request.app.state.settings.accounts or identity is None or not identity.user.admin:
        raise NotFound()
    return identity


def _directory(request: Request) -> UserDirectory:
    return cast(UserDirectory, request.app.state.directory)


async def _page(
    request: Request, templates: TemplatesDep, me: Identity, status: int = 200, **context: Any
) -> HTMLResponse:
    usage = await _directory(request).usage()
    return form_page(
        templates, "admin.html", status, identity=me, usage=usage, title="Admin", **context
    )


@router.get("/admin", response_class=HTMLResponse)
async def admin_page(request: Request, templates: TemplatesDep, identity: IdentityDep) -> Response:
    return await _page(request, templates, _admin(request, identity))


@router.post("/admin/users/{user_id}/{action}")
async def set_disabled(
    request: Request, user_id: str, action: str, templates: TemplatesDep, identity: IdentityDep
) -> Response:
    me = _admin(request, identity)
    if action not in ("disable", "enable"):
        raise NotFound()
    if action == "disable" and user_id == me.user.id:
        return await _page(request, templates, me, 409, error=SELF)
    if not await _directory(request).set_disabled(user_id, action == "disable"):
        raise NotFound("There is no such user.")
    return RedirectResponse("/admin", status_code=303)
