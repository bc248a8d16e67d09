"""Identity, cross-site refusal, body limits and security headers, as one ASGI middleware.

A pure ASGI middleware (not `BaseHTTPMiddleware`) so that long event streams pass
through untouched and cheaply.

- Identity (mode `none`): a signed, HttpOnly, SameSite=Lax cookie carries an opaque
  random owner id; a request without a valid one gets a new id, and the answer sets the
  cookie. In the modes with accounts (`anonymous=False`) no such cookie is made: the
  accounts middleware inside this one (`auth.middleware`) names the owner.
- Cross-site: a state-changing request is refused (JSON 403) when the browser marks it
  `Sec-Fetch-Site: cross-site` or sends an `Origin` that is not the app's own.
  Programs that send neither header (curl, httpx) pass, and so, with accounts, does a
  request with `Authorization: Bearer` (a browser cannot add that header to a
  cross-site request, and such a request is judged by its token alone).
- Body size: a request body larger than the limit is refused with 413 before it is
  read whole, whatever its framing. A few paths take larger bodies (`larger_bodies`:
  the imports, and the routes that take files, which check each file's own size as it
  arrives, `hxchat.files.uploads`), with a limit of their own.
- Every answer carries a strict Content-Security-Policy unless a route set its own.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from typing import cast
from urllib.parse import urlsplit

from itsdangerous import BadSignature, Signer
from starlette.datastructures import MutableHeaders, State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hxchat.errors import BodyTooLarge, CrossSiteRequest

COOKIE_NAME = "hxchat_session"
COOKIE_MAX_AGE = 60 * 60 * 24 * 400  # the longest browsers keep a cookie
PROVED_COOKIES = 10_000  # cookie headers whose owner is remembered (the oldest go first)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; frame-ancestors 'self'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'"
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SecurityMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        state: State,
        max_body_bytes: int,
        anonymous: bool = True,
        larger_bodies: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.anonymous = anonymous
        self.state = state  # the lifespan puts the session `signer` there (see `make_signer`)
        self.max_body_bytes = max_body_bytes
        self.larger_bodies = dict(larger_bodies or {})  # path -> its own limit
        self._proved: dict[str, str] = {}  # cookie header -> the owner it proved
        self._proved_by: Signer | None = None  # the signer that proved them

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if (
            scope["method"] not in SAFE_METHODS
            and _is_cross_site(headers)
            and (self.anonymous or not _has_bearer(headers))
        ):
            await _refuse(send, CrossSiteRequest.status_code, CrossSiteRequest.default_detail)
            return
        limit = self.larger_bodies.get(scope["path"], self.max_body_bytes)
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await _refuse(send, 413, BodyTooLarge.default_detail)
            return

        owner, is_new = "", False
        if self.anonymous:
            owner, is_new = self._owner(headers.get("cookie", ""))
            scope.setdefault("state", {})["owner"] = owner
        secure = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                if "content-security-policy" not in out:
                    out["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
                out.setdefault("X-Content-Type-Options", "nosniff")
                out.setdefault("Referrer-Policy", "same-origin")
                if is_new:
                    out.append("Set-Cookie", self._cookie(owner, secure))
            await send(message)

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        await self.app(scope, limited_receive, send_with_headers)

    @property
    def signer(self) -> Signer:
        return cast(Signer, self.state.signer)

    def _owner(self, cookie_header: str) -> tuple[str, bool]:
        """The owner the session cookie proves, or a new one (True). A cookie header
        seen before gives the same owner without parsing and checking it again: the
        answer depends only on the header and the signer, and a browser sends the same
        header with every request (each answer's POST and its stream)."""
        signer = self.signer
        if signer is not self._proved_by:
            self._proved, self._proved_by = {}, signer
        owner = self._proved.get(cookie_header)
        if owner is not None:
            return owner, False
        owner, is_new = self._check(cookie_header, signer)
        if not is_new:
            if len(self._proved) >= PROVED_COOKIES:
                del self._proved[next(iter(self._proved))]  # the oldest
            self._proved[cookie_header] = owner
        return owner, is_new

    def _check(self, cookie_header: str, signer: Signer) -> tuple[str, bool]:
        cookie = SimpleCookie()
        try:
            cookie.load(cookie_header)
        except CookieError:  # a malformed cookie header is just no cookie
            cookie = SimpleCookie()
        morsel = cookie.get(COOKIE_NAME)
        if morsel is not None:
            try:
                return signer.unsign(morsel.value).decode(), False
            except (BadSignature, UnicodeDecodeError):
                pass
        return secrets.token_hex(16), True

    def _cookie(self, owner: str, secure: bool) -> str:
        value = self.signer.sign(owner).decode()
        parts = [
            f"{COOKIE_NAME}={value}",
            "Path=/",
            f"Max-Age={COOKIE_MAX_AGE}",
            "HttpOnly",
            "SameSite=Lax",
        ]
        if secure:
            parts.append("Secure")
        return "; ".join(parts)


def make_signer(secret_key: str) -> Signer:
    return Signer(secret_key, salt="hxchat.session")


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def _has_bearer(headers: dict[str, str]) -> bool:
    return headers.get("authorization", "")[:7].lower() == "bearer "


def _is_cross_site(headers: dict[str, str]) -> bool:
    if headers.get("sec-fetch-site") == "cross-site":
        return True
    origin = headers.get("origin")
    if origin is None:
        return False
    # Compare host[:port] only: behind a TLS-terminating proxy the scheme differs.
    theirs = urlsplit(origin).netloc.lower()
    ours = {headers.get("host", "").lower(), headers.get("x-forwarded-host", "").lower()}
    return not theirs or theirs not in ours


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
