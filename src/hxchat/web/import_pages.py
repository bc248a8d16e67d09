"""The settings page's import form, without JavaScript: POST, then redirect, then GET.

A file that imports redirects (303) to `/settings?imported=N`, which says how many
conversations arrived; a refused one shows the settings page again with the reason
next to the form and the status of the refusal (413, 422). The export needs no route
of its own here: the page links `GET /api/export`, a download.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from hxchat.library.imported import ImportRefused, ImportTooLarge
from hxchat.web.account_pages import render_settings
from hxchat.web.deps import (
    AccountsDep,
    IdentityDep,
    OwnerDep,
    SettingsDep,
    StoreDep,
    TemplatesDep,
)
from hxchat.web.import_upload import import_upload

router = APIRouter()


@router.post("/settings/import")
async def import_from_settings(
    request: Request,
    store: StoreDep,
    owner: OwnerDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    accounts: AccountsDep,
    identity: IdentityDep,
) -> Response:
    try:
        count = await import_upload(request, store, owner, settings)
    except (ImportRefused, ImportTooLarge) as refused:
        return await render_settings(
            request, templates, accounts, identity, refused.status_code, import_error=refused.detail
        )
    return RedirectResponse(f"/settings?imported={count}#import-heading", status_code=303)
