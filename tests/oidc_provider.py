"""A real OpenID Connect provider for the tests: `oidc-provider-mock` (discovery, JWKS,
the authorization code flow, signed id tokens) served by werkzeug on a loopback port in
a thread of the test process.

Any client id and secret are accepted. A person is a `sub` with claims
(`Provider.person`); the provider's authorization form signs in whichever `sub` is
posted to it, which a test does with `authorize` (or a browser, by clicking).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import oidc_provider_mock
import werkzeug.serving


@dataclass
class Provider:
    issuer: str

    def person(self, sub: str, **claims: Any) -> None:
        """Make (or replace) the person `sub` with these id token claims."""
        answer = httpx.put(f"{self.issuer}/users/{sub}", json=claims, timeout=10)
        assert answer.status_code == 204, answer.text

    async def authorize(self, url: str, sub: str, *, deny: bool = False) -> str:
        """Post the provider's authorization form for `sub` (or deny it); the address
        the provider sends the browser back to (path and query, on hxchat)."""
        form = {"action": "deny"} if deny else {"sub": sub}
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(url, data=form)
        assert answer.status_code == 302, answer.text
        back = urlsplit(answer.headers["location"])
        return f"{back.path}?{back.query}"


@contextmanager
def running_provider(**options: Any) -> Iterator[Provider]:
    server = werkzeug.serving.make_server(
        "127.0.0.1", 0, oidc_provider_mock.app(**options), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Provider(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()
