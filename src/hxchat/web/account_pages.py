"""The accounts' pages: sign in, sign up, sign out, settings (password and API tokens).

Plain forms, server-rendered, usable without JavaScript, under the page's strict CSP.
They exist in the modes with accounts; in mode `none` they answer 404, except the
settings page, which offers every mode the export and import of conversations. The cross-site
refusal of `web.security` guards every POST here, `/login` and `/logout` included.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hxchat.auth.identity import Identity
from hxchat.auth.users import NewToken, WrongPassword, cleared_cookie, session_cookie
from hxchat.errors import HxchatError, NotFound, TooManyRequests
from hxchat.web.deps import AccountsDep, IdentityDep, LimitsDep, SettingsDep, TemplatesDep

router = APIRouter()

CHANGED = "Your password is changed. Your other sessions and your API tokens have ended."


def safe_next(value: str | None) -> str:
    """`value` when it is a path on this site, else "/": never another site, however
    written (`//evil.example`, `/\\evil.example`, `https:evil.example`, `%2F%2F…`)."""
    if not value:
        return "/"
    for form in (value, unquote(value), unquote(unquote(value))):
        if not form.startswith("/") or form.startswith("//") or "\\" in form:
            return "/"
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in form):
            return "/"
        parts = urlsplit(form)
        if parts.scheme or parts.netloc:
            return "/"
    return value


def _need_accounts(request: Request) -> None:
    if not request.app.state.settings.accounts:
        raise NotFound()


def login_context(request: Request) -> dict[str, Any]:
    """What the sign-in page offers: the password form, the provider's button, or (header
    mode) a word about the proxy that signs people in."""
    settings = request.app.state.settings
    oidc = request.app.state.oidc
    return {
        "signup_open": _signup_open(request),
        "password_form": "password" in settings.auth_modes,
        "oidc_name": oidc.name if oidc is not None else None,
        "header_mode": "header" in settings.auth_modes,
    }


def _signup_open(request: Request) -> bool:
    settings = request.app.state.settings
    return bool(
        settings.accounts and "password" in settings.auth_modes and settings.signup == "open"
    )


def is_secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def signed_in_redirect(request: Request, secret: str, days: int, to: str) -> Response:
    response = RedirectResponse(to, status_code=303)
    response.headers.append(
        "Set-Cookie", session_cookie(secret, secure=is_secure(request), days=days)
    )
    return response


def form_page(
    templates: TemplatesDep, name: str, status: int = 200, **context: Any
) -> HTMLResponse:
    headers = {"Cache-Control": "no-store"}
    error = context.get("error")
    if isinstance(error, TooManyRequests):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, HxchatError):
        context["error"] = error.detail
    return HTMLResponse(templates.page(name, **context), status_code=status, headers=headers)


# -- sign in and out ---------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def login_page(
    request: Request, templates: TemplatesDep, identity: IdentityDep, next: str = "/"
) -> Response:
    _need_accounts(request)
    if identity is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return form_page(templates, "login.html", next=safe_next(next), **login_context(request))


@router.post("/login")
async def login(
    request: Request,
    templates: TemplatesDep,
    accounts: AccountsDep,
    settings: SettingsDep,
    identity: IdentityDep,
    limits: LimitsDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    _need_accounts(request)
    replaces = identity.session if identity is not None else None
    try:
        _, secret = await accounts.sign_in(username, password, _address(request), replaces)
    except TooManyRequests as exc:
        return await _locked_out(request, templates, limits, exc, username, next)
    except WrongPassword as exc:
        return form_page(
            templates,
            "login.html",
            exc.status_code,
            error=exc,
            username=username,
            next=safe_next(next),
            **login_context(request),
        )
    return signed_in_redirect(request, secret, settings.session_days, safe_next(next))


async def _locked_out(
    request: Request,
    templates: TemplatesDep,
    limits: LimitsDep,
    refused: TooManyRequests,
    username: str,
    next: str,
) -> Response:
    """A locked-out sign-in: answered after the tarpit's wait (`auth.tarpit`), with a
    page rendered once per username and minute, no password checked, nothing stored."""
    waited = await limits.tarpit.hold(_address(request))
    page = templates.cached_page(
        "login.html",
        error=refused.detail,
        username=username,
        next=safe_next(next),
        **login_context(request),
    )
    headers = {"Cache-Control": "no-store", "Retry-After": str(refused.retry_after)}
    if not waited:  # the tarpit is full: no keep-alive for this client
        headers["Connection"] = "close"
    return HTMLResponse(page, status_code=refused.status_code, headers=headers)


@router.post("/logout")
async def logout(request: Request, accounts: AccountsDep, identity: IdentityDep) -> Response:
    _need_accounts(request)
    if identity is not None and identity.session is not None:
        await accounts.sign_out(identity.session)
    response = RedirectResponse("/login", status_code=303)
    response.headers.append("Set-Cookie", cleared_cookie(secure=is_secure(request)))
    return response


@router.get("/signup", response_class=HTMLResponse)
async def signup_page(request: Request, templates: TemplatesDep) -> Response:
    if not _signup_open(request):
        raise NotFound()
    return form_page(templates, "signup.html")


@router.post("/signup")
async def signup(
    request: Request,
    templates: TemplatesDep,
    accounts: AccountsDep,
    settings: SettingsDep,
    identity: IdentityDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    if not _signup_open(request):
        raise NotFound()
    replaces = identity.session if identity is not None else None
    try:
        _, secret = await accounts.sign_up(username, password, replaces)
    except HxchatError as exc:
        if exc.status_code >= 500:
            raise
        return form_page(templates, "signup.html", exc.status_code, error=exc, username=username)
    return signed_in_redirect(request, secret, settings.session_days, "/")


# -- settings --------------------------------------------------------------------------


async def render_settings(
    request: Request,
    templates: TemplatesDep,
    accounts: AccountsDep,
    identity: Identity | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The settings page: in the modes with accounts the signed-in user's password and
    tokens, and in every mode their conversations' export and import."""
    me = _signed_in(request, identity) if request.app.state.settings.accounts else None
    tokens = await accounts.store.list_tokens(me.user.id) if me is not None else []
    return form_page(
        templates,
        "settings.html",
        status,
        identity=me,
        tokens=tokens,
        title="Settings",
        import_limit_mb=request.app.state.settings.max_import_mb,
        **context,
    )


def _signed_in(request: Request, identity: Identity | None) -> Identity:
    _need_accounts(request)
    assert identity is not None  # the accounts middleware sends nobody here
    return identity


def imported_sentence(imported: str) -> str | None:
    """The settings page's word after an import (`?imported=N`, the redirect's)."""
    if not (imported.isascii() and imported.isdigit() and len(imported) <= 9):
        return None
    count = int(imported)
    noun = "conversation" if count == 1 else "conversations"
    return f"Imported {count:,} {noun}; they are in your conversation list."


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(
    request: Request,
    templates: TemplatesDep,
    accounts: AccountsDep,
    identity: IdentityDep,
    imported: str = "",
) -> Response:
    return await render_settings(
        request, templates, accounts, identity, import_done=imported_sentence(imported)
    )


@router.post("/settings/password", response_class=HTMLResponse)
async def change_password(
    request: Request,
    templates: TemplatesDep,
    accounts: AccountsDep,
    identity: IdentityDep,
    current_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
) -> Response:
    me = _signed_in(request, identity)
    try:
        await accounts.change_password(me, current_password, new_password)
    except HxchatError as exc:
        if exc.status_code >= 500:
            raise
        return await render_settings(
            request, templates, accounts, me, exc.status_code, password_error=exc.detail
        )
    return await render_settings(
        request,
        templates,
        accounts,
        me,
        password_done=CHANGED,
    )


@router.post("/settings/tokens", response_class=HTMLResponse)
async def create_token(
    request: Request,
    templates: TemplatesDep,
    accounts: AccountsDep,
    identity: IdentityDep,
    name: Annotated[str, Form()] = "",
) -> Response:
    me = _signed_in(request, identity)
    try:
        made: NewToken = await accounts.create_token(me.user, name)
    except HxchatError as exc:
        if exc.status_code >= 500:
            raise
        return await render_settings(
            request, templates, accounts, me, exc.status_code, token_error=exc.detail
        )
    return await render_settings(request, templates, accounts, me, 201, new_token=made)


@router.post("/settings/tokens/{token_id}/revoke")
async def revoke_token(
    request: Request, token_id: str, accounts: AccountsDep, identity: IdentityDep
) -> Response:
    me = _signed_in(request, identity)
    await accounts.revoke_token(me.user, token_id)
    return RedirectResponse("/settings", status_code=303)
