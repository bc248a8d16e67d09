"""Sign-in with an OpenID Connect provider: `/auth/oidc/login` and its callback.

`auth.oidc` does the protocol; these routes carry its state in a cookie, make the
session as a password sign-in does (a new one, never the one the browser came with),
and show any failure on the sign-in page with its status (400, or 403 for a refusal).
"""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from hxchat.auth.external import oidc_user
from hxchat.auth.oidc import CALLBACK, STATE_COOKIE, OidcSignIn, SignInFailed
from hxchat.errors import NotFound
from hxchat.store.directory import UserDirectory
from hxchat.web.account_pages import (
    form_page,
    is_secure,
    login_context,
    safe_next,
    signed_in_redirect,
)
from hxchat.web.deps import AccountsDep, IdentityDep, SettingsDep, TemplatesDep

router = APIRouter()


def _provider(request: Request) -> OidcSignIn:
    oidc = request.app.state.oidc
    if oidc is None:
        raise NotFound()
    return cast(OidcSignIn, oidc)


def redirect_uri(request: Request) -> str:
    """`{origin}/auth/oidc/callback`: the address to register at the provider."""
    return str(request.base_url).rstrip("/") + CALLBACK


def _failed(request: Request, templates: TemplatesDep, exc: SignInFailed) -> Response:
    response = form_page(
        templates, "login.html", exc.status_code, error=exc, next="/", **login_context(request)
    )
    response.headers.append("Set-Cookie", _provider(request).cookie("", secure=is_secure(request)))
    return response


@router.get("/auth/oidc/login")
async def oidc_login(request: Request, templates: TemplatesDep, next: str = "/") -> Response:
    provider = _provider(request)
    try:
        url, state = await provider.start(redirect_uri(request), safe_next(next))
    except SignInFailed as exc:
        return _failed(request, templates, exc)
    response = RedirectResponse(url, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.headers.append("Set-Cookie", provider.cookie(state, secure=is_secure(request)))
    return response


@router.get("/auth/oidc/callback")
async def oidc_callback(
    request: Request,
    templates: TemplatesDep,
    accounts: AccountsDep,
    settings: SettingsDep,
    identity: IdentityDep,
) -> Response:
    provider = _provider(request)
    directory = cast(UserDirectory, request.app.state.directory)
    try:
        pending = provider.pending(request.cookies.get(STATE_COOKIE))
        claims = await provider.finish(dict(request.query_params), pending, redirect_uri(request))
        user = await oidc_user(directory, provider.issuer, claims)
    except SignInFailed as exc:
        return _failed(request, templates, exc)
    replaces = identity.session if identity is not None else None
    secret = await accounts.start_session(user, replaces)
    response = signed_in_redirect(
        request, secret, settings.session_days, safe_next(pending.get("next"))
    )
    response.headers.append("Set-Cookie", provider.cookie("", secure=is_secure(request)))
    return response
