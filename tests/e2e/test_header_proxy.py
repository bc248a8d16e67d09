"""Header mode as deployed: a real `hxchat serve` (which turns uvicorn's proxy-header
rewriting off in this mode) behind a real authenticating proxy on 127.0.0.1, the only
trusted peer; and a second loopback address, 127.0.0.2, which is another peer, sending
the header itself, with and without a forged X-Forwarded-For."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.proxies import HeaderProxy
from tests.servers import Server, serving

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir: Path = tmp_path_factory.mktemp("header-mode")
    env = {
        "HXCHAT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'hxchat.db'}",
        "HXCHAT_ECHO_DELAY_MS": "0",
        "HXCHAT_AUTH": "header",
        "HXCHAT_TRUSTED_PROXIES": "127.0.0.1/32",
        # what a deployment may have exported for uvicorn: must not matter in header mode
        "FORWARDED_ALLOW_IPS": "*",
    }
    with serving(workdir, env) as s:
        yield s


@pytest.fixture
def proxy(server: Server) -> Iterator[HeaderProxy]:
    p = HeaderProxy(("127.0.0.1", server.port), "alice")
    try:
        yield p
    finally:
        p.close()


def from_address(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10)


def test_through_the_proxy_the_user_is_who_it_says(server: Server, proxy: HeaderProxy) -> None:
    with from_address("127.0.0.2") as browser:
        forged = {"Remote-User": "mallory", "X-Forwarded-For": "127.0.0.1"}
        me = browser.get(f"{proxy.url}/api/me", headers=forged)
        assert me.status_code == 200, me.text
        assert (me.json()["name"], me.json()["auth"]) == ("alice", "header")
        made = browser.post(f"{proxy.url}/api/conversations")
        assert made.status_code == 201
        page = browser.get(f"{proxy.url}/c/{made.json()['id']}")
        assert page.status_code == 200 and "Signed in as <strong>alice</strong>" in page.text


def test_a_forged_header_from_another_peer_is_403(server: Server) -> None:
    with from_address("127.0.0.2") as other:
        for headers in (
            {"Remote-User": "alice"},
            {"Remote-User": "alice", "X-Forwarded-For": "127.0.0.1"},
            {"Remote-User": "alice", "X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"},
        ):
            answer = other.get(f"{server.url}/api/me", headers=headers)
            assert answer.status_code == 403, (headers, answer.text)
            assert other.post(f"{server.url}/api/conversations", headers=headers).status_code == 403
        assert other.get(f"{server.url}/api/me").status_code == 401
    with from_address("127.0.0.1") as local:  # the trusted address itself still works
        assert local.get(f"{server.url}/api/me", headers={"Remote-User": "bob"}).status_code == 200
