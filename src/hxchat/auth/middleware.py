"""Who is asking, on every request of a mode with accounts: one pure ASGI middleware.

It sits inside `web.security.SecurityMiddleware` (which refuses cross-site requests,
limits bodies and adds the headers, also to what this answers) and, like it, costs an
event stream nothing per chunk but a clock read.

- `Authorization: Bearer <token>`: the token's user, or 401 (a wrong, revoked or
  expired token; a cookie sent with it does not help).
- Header mode: the header `HXCHAT_AUTH_HEADER` names the user, believed only when the
  TCP peer (`scope["client"]`, never `X-Forwarded-For`) is in `HXCHAT_TRUSTED_PROXIES`;
  from any other peer a request carrying the header answers 403. A trusted peer's
  `X-Forwarded-Proto: https` makes the request's scheme https. (`hxchat serve` turns
  uvicorn's own proxy-header rewriting off in this mode, so the peer is the peer.)
- Otherwise the session cookie (`hxchat_login`): its user, or nobody. A page visit it
  signs in (a GET outside `/api/`) sends the cookie again with a fresh `Max-Age`: a
  sign-in lasts `HXCHAT_SESSION_DAYS` without use, so the browser must keep the cookie
  that long after the last visit, not after the sign-in.
- Nobody, on a path that is not open (`/login`, `/signup`, `/logout`, `/healthz`,
  `/metrics`, `/static/`, and shared links `/s/` with `HXCHAT_SHARE=anyone`): an API
  call answers 401 `{"detail": "Sign in first."}`, an htmx request 401 with
  `HX-Redirect: /login`, a page `303` to `/login?next=<path>`.
- The user's id becomes the request's `owner`: every owner check of the store keys on
  the user unchanged.
- An event stream's sign-in is checked once a second, with every other open stream's
  (`identity`): a logout, a revoked token or a disabled user ends it at its next event.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from http.cookies import CookieError, SimpleCookie
from typing import cast
from urllib.parse import quote

from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hxchat.auth.external import DISABLED
from hxchat.auth.identity import Identities, Identity
from hxchat.auth.names import InvalidName
from hxchat.auth.secrets import SESSION_COOKIE
from hxchat.auth.users import session_cookie
from hxchat.config import Settings

OPEN_PATHS = frozenset({"/login", "/signup", "/logout", "/healthz", "/metrics"})
OPEN_PREFIXES = ("/static/", "/auth/oidc/")
SHARED_LINKS = "/s/"  # open with HXCHAT_SHARE=anyone (#12)
SIGN_IN_FIRST = "Sign in first."
BAD_TOKEN = "The API token is wrong, revoked or expired."  # noqa: S105 - a sentence
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_trusted(scope: Scope, networks: tuple[Network, ...]) -> bool:
    """Is the TCP peer of this request one of the trusted proxies?"""
    client = scope.get("client")
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def is_open(path: str, shared_links: bool = False) -> bool:
    """May nobody ask for this path? `shared_links`: anyone may open a shared link."""
    return (
        path in OPEN_PATHS
        or path.startswith(OPEN_PREFIXES)
        or (shared_links and path.startswith(SHARED_LINKS))
    )


def is_stream(path: str) -> bool:
    return path.startswith(("/api/generations/", "/generations/")) and path.endswith(
        ("/events", "/stream")
    )


def session_secret(cookie_header: str) -> str | None:
    cookie = SimpleCookie()
    try:
        cookie.load(cookie_header)
    except CookieError:
        return None
    morsel = cookie.get(SESSION_COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


class AccountsMiddleware:
    def __init__(self, app: ASGIApp, *, state: State, settings: Settings) -> None:
        self.app = app
        self.state = state  # the lifespan puts `identities` there
        self.header: bytes | None = None
        self.shared_links = settings.share_mode == "anyone"
        self.session_days = settings.session_days
        if "header" in settings.auth_modes:
            self.header = settings.auth_header.lower().encode("latin-1")
            self.header_name = settings.auth_header
            self.networks = settings.trusted_networks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        identities = cast(Identities, self.state.identities)
        wanted = (b"authorization", b"cookie", b"x-forwarded-proto", self.header)
        headers = {k: v for k, v in scope["headers"] if k in wanted}
        token: str | None = None
        identity: Identity | None = None
        named: bytes | None = None
        if self.header is not None:
            named = headers.get(self.header)
            if is_trusted(scope, self.networks):
                if headers.get(b"x-forwarded-proto", b"").strip().lower() == b"https":
                    scope["scheme"] = "https"
            elif named is not None:
                await _json(
                    send,
                    403,
                    f"The {self.header_name} header is only believed from a trusted proxy.",
                    [],
                )
                return
        if b"authorization" in headers:
            scheme, _, value = headers[b"authorization"].decode("latin-1").partition(" ")
            token = value.strip()
            if scheme.lower() == "bearer" and token:
                identity = await identities.by_token(token)
            if identity is None:
                await _json(send, 401, BAD_TOKEN, [(b"www-authenticate", b"Bearer")])
                return
        elif named is not None:
            try:
                identity = await identities.by_header(named.decode("utf-8", "replace"))
            except InvalidName as exc:
                await _json(send, 400, f"The {self.header_name} header: {exc.detail}", [])
                return
            if identity is None:
                await _json(send, 403, DISABLED, [])
                return
        elif b"cookie" in headers:
            secret = session_secret(headers[b"cookie"].decode("latin-1"))
            if secret is not None:
                identity = await identities.by_session(secret)
                if identity is not None and _is_page_visit(scope):
                    renewed = session_cookie(
                        secret, secure=scope.get("scheme") == "https", days=self.session_days
                    )
                    send = _renewing(send, renewed.encode("latin-1"))
        path: str = scope["path"]
        if identity is None:
            if not is_open(path, self.shared_links):
                await _sign_in_first(scope, send)
                return
        else:
            state = scope.setdefault("state", {})
            state["owner"] = identity.user.id
            state["identity"] = identity
            if is_stream(path):
                await _guarded(self.app, scope, receive, send, identities, identity, token)
                return
        await self.app(scope, receive, send)


def _is_page_visit(scope: Scope) -> bool:
    path: str = scope["path"]
    return (
        scope["method"] == "GET"
        and not path.startswith("/api/")
        and not is_stream(path)
        and not is_open(path)
    )


def _renewing(send: Send, cookie: bytes) -> Send:
    """`send` with the session cookie renewed, unless the answer sets it itself; an
    answer that carries it is `private` (no shared cache keeps a user's cookie)."""
    mine = SESSION_COOKIE.encode() + b"="

    async def renewing_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if not any(k.lower() == b"set-cookie" and v.startswith(mine) for k, v in headers):
                headers.append((b"set-cookie", cookie))
                if not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"private"))
            message = {**message, "headers": headers}
        await send(message)

    return renewing_send


async def _guarded(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    identities: Identities,
    identity: Identity,
    token: str | None,
) -> None:
    """Run a stream that ends (as if its client had left) once its sign-in is gone: the
    sign-ins of all open streams are checked together, once a second (`identity`)."""
    ended = asyncio.Event()
    with identities.watching(identity, token) as watch:

        async def guarded_send(message: Message) -> None:
            if ended.is_set():
                return
            if watch.revoked and message["type"] == "http.response.body":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                ended.set()
                return
            await send(message)

        async def guarded_receive() -> Message:
            if ended.is_set():
                return {"type": "http.disconnect"}
            receiving = asyncio.ensure_future(receive())
            ending = asyncio.ensure_future(ended.wait())
            done, _ = await asyncio.wait({receiving, ending}, return_when=asyncio.FIRST_COMPLETED)
            if receiving in done:
                ending.cancel()
                return receiving.result()
            receiving.cancel()
            return {"type": "http.disconnect"}

        await app(scope, guarded_receive, guarded_send)


async def _sign_in_first(scope: Scope, send: Send) -> None:
    path: str = scope["path"]
    if path.startswith("/api/"):
        await _json(send, 401, SIGN_IN_FIRST, [(b"www-authenticate", b"Bearer")])
        return
    request_headers = dict(scope["headers"])
    if request_headers.get(b"hx-request") == b"true":
        await _answer(
            send,
            401,
            b"text/plain; charset=utf-8",
            SIGN_IN_FIRST.encode(),
            [(b"hx-redirect", b"/login")],
        )
        return
    location = "/login"
    if scope["method"] in ("GET", "HEAD"):
        query = scope.get("query_string", b"").decode("latin-1")
        location += "?next=" + quote(path + (f"?{query}" if query else ""), safe="")
    await _answer(send, 303, b"text/plain; charset=utf-8", b"", [(b"location", location.encode())])


async def _json(send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]]) -> None:
    await _answer(send, status, b"application/json", json.dumps({"detail": detail}).encode(), extra)


async def _answer(
    send: Send, status: int, kind: bytes, body: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
