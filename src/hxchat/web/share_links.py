"""What the share routes have in common (#12): new links, and the owner's Share panel.

A link is `/s/<token>`: 24 random bytes (192 bits, URL-safe base64). The store keeps
only the token's digest (`store/shares.py`), so the owner's page can show a link only
right after making it: the htmx answer carries it, and without JavaScript the redirect
after the form post does (`/c/{id}?shared=<token>`, shown only when it is one of that
conversation's links).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Request

from hxchat.auth.secrets import digest
from hxchat.store.shares import ShareStore

TOKEN_BYTES = 24
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


async def get_shares(request: Request) -> ShareStore:
    return cast(ShareStore, request.app.state.shares)


SharesDep = Annotated[ShareStore, Depends(get_shares)]


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def path_of(token: str) -> str:
    return f"/s/{token}"


def key_of(token: str) -> str | None:
    """The store's key for a token from a URL, or None for what cannot be one."""
    if not 0 < len(token) <= 64 or not _TOKEN_CHARS.issuperset(token):
        return None
    return digest(token)


@dataclass(frozen=True, slots=True)
class SharePanel:
    """The owner's Share controls: is the conversation shared, and the link to show."""

    shared: bool = False
    url: str | None = None  # the absolute link, right after it was made


async def panel_for(
    request: Request, shares: ShareStore, conversation_id: str, token: str = ""
) -> SharePanel:
    """The panel of the owner's conversation; `token` a link just made, if any."""
    keys = await shares.shared(conversation_id)
    key = key_of(token) if token else None
    return SharePanel(shared=bool(keys), url=absolute(request, token) if key in keys else None)


def absolute(request: Request, token: str) -> str:
    return str(request.base_url).rstrip("/") + path_of(token)
