"""Header mode through the real app (ASGI): the header is believed only from a trusted
TCP peer (`scope["client"]`), never because of X-Forwarded-For; from anyone else it
answers 403. The first request naming a new user makes them. docs/api.md#accounts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from hxchat.config import Settings
from tests.helpers import running_app, send

TRUSTED = ("10.0.0.5", 40_000)
STRANGER = ("192.0.2.7", 40_000)


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(auth="header", trusted_proxies="10.0.0.0/24,::1/128")


def peer(app: FastAPI, client: tuple[str, int]) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=client)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30)


@pytest.fixture
async def proxy(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with peer(app, TRUSTED) as c:
        yield c


@pytest.fixture
async def stranger(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with peer(app, STRANGER) as c:
        yield c


async def test_the_proxys_header_names_the_user_who_is_made_at_once(
    app: FastAPI, proxy: httpx.AsyncClient
) -> None:
    alice = {"Remote-User": "alice"}
    me = await proxy.get("/api/me", headers=alice)
    assert me.status_code == 200
    assert (me.json()["name"], me.json()["auth"], me.json()["admin"]) == ("alice", "header", False)
    made = await proxy.post("/api/conversations", headers=alice)
    assert made.status_code == 201
    again = await proxy.get("/api/me", headers=alice)
    assert again.json()["id"] == me.json()["id"]
    bob = await proxy.get(f"/api/conversations/{made.json()['id']}", headers={"Remote-User": "bob"})
    assert bob.status_code == 404  # isolation keys on the user
    page = await proxy.get("/", headers=alice)
    assert page.status_code == 200 and "Signed in as <strong>alice</strong>" in page.text


async def test_a_forged_header_from_another_peer_is_403(
    stranger: httpx.AsyncClient, proxy: httpx.AsyncClient
) -> None:
    for headers in (
        {"Remote-User": "alice"},
        {"Remote-User": "alice", "X-Forwarded-For": "10.0.0.5"},
        {"remote-user": "alice", "X-Forwarded-For": "10.0.0.5", "X-Real-IP": "10.0.0.5"},
        {"Remote-User": "alice", "Forwarded": "for=10.0.0.5"},
    ):
        for path in ("/api/me", "/", "/login", "/healthz"):
            answer = await stranger.get(path, headers=headers)
            assert answer.status_code == 403, (path, headers)
        assert "trusted proxy" in (await stranger.get("/api/me", headers=headers)).text
    assert (
        await stranger.post("/api/conversations", headers={"Remote-User": "a"})
    ).status_code == 403
    # without the header, a stranger is only somebody who has not signed in
    assert (await stranger.get("/api/me")).status_code == 401
    assert (await stranger.get("/")).headers["location"] == "/login?next=%2F"
    assert (await stranger.get("/healthz")).status_code == 200
    # and nobody was made
    assert (await proxy.get("/api/me", headers={"Remote-User": "alice"})).status_code == 200


async def test_the_trusted_proxy_without_a_header_is_nobody(proxy: httpx.AsyncClient) -> None:
    assert (await proxy.get("/api/me")).status_code == 401
    login = await proxy.get("/login")
    assert login.status_code == 200 and "proxy in front of it" in login.text


async def test_a_disabled_user_is_out_within_a_second_and_a_bad_name_is_400(
    app: FastAPI, proxy: httpx.AsyncClient
) -> None:
    assert (await proxy.get("/api/me", headers={"Remote-User": "carol"})).status_code == 200
    assert await app.state.accounts.store.set_disabled("carol", True)
    app.state.identities._cache.clear()  # what a second does
    out = await proxy.get("/api/me", headers={"Remote-User": "carol"})
    assert out.status_code == 403 and "disabled" in out.text
    bad = await proxy.get("/api/me", headers={"Remote-User": "a\x01b"})
    assert bad.status_code == 400
    long = await proxy.get("/api/me", headers={"Remote-User": "x" * 65})
    assert long.status_code == 400


async def test_api_tokens_work_in_header_mode(app: FastAPI, proxy: httpx.AsyncClient) -> None:
    made = await proxy.post("/api/tokens", json={"name": "script"}, headers={"Remote-User": "dan"})
    assert made.status_code == 201
    async with peer(app, STRANGER) as program:
        bearer = {"Authorization": f"Bearer {made.json()['token']}"}
        me = await program.get("/api/me", headers=bearer)
        assert (me.status_code, me.json()["name"]) == (200, "dan")
        cid = (await program.post("/api/conversations", headers=bearer)).json()["id"]
        program.headers.update(bearer)
        started = await send(program, cid, "hello")
        assert (await program.get(started["events_url"])).status_code == 200


async def test_the_header_can_be_renamed(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(auth="header", auth_header="X-Auth-Request-User")
    async with running_app(settings) as app, peer(app, ("127.0.0.1", 5)) as local:
        me = await local.get("/api/me", headers={"X-Auth-Request-User": "erin"})
        assert me.json()["name"] == "erin"
        assert (await local.get("/api/me", headers={"Remote-User": "erin"})).status_code == 401
    async with running_app(settings) as app, peer(app, ("::ffff:127.0.0.1", 5)) as mapped:
        assert (
            await mapped.get("/api/me", headers={"X-Auth-Request-User": "f"})
        ).status_code == 200
