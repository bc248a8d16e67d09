"""Password mode through the real app (ASGI, a real SQLite file): signing in and out,
sessions, API tokens, and the hostile inputs each of them must withstand.
docs/api.md#accounts describes what is checked here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.engine import Connection

from hxchat.auth.secrets import SESSION_COOKIE
from hxchat.config import Settings
from hxchat.store.tables import api_tokens, utcnow
from hxchat.web.account_pages import safe_next
from tests import html_tree
from tests.helpers import (
    PASSWORD,
    add_user,
    client_for,
    eventually,
    new_conversation,
    running_app,
    send,
    sign_in,
    signed_in,
)

pytestmark = pytest.mark.usefixtures("cheap_hashing")

WRONG = "Wrong username or password."


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(auth="password")


@pytest.fixture
async def alice(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with signed_in(app, "alice") as c:
        yield c


def cookie_of(response: httpx.Response) -> str:
    return next(v for v in response.headers.get_list("set-cookie") if SESSION_COOKIE in v)


async def test_before_sign_in_pages_redirect_and_the_api_says_so(
    client: httpx.AsyncClient,
) -> None:

    home = await client.get("/")
    assert (home.status_code, home.headers["location"]) == (303, "/login?next=%2F")
    deep = await client.get("/c/abc", params={"x": "1"})
    assert deep.headers["location"] == "/login?next=%2Fc%2Fabc%3Fx%3D1"
    api = await client.get("/api/conversations")
    assert (api.status_code, api.json()) == (401, {"detail": "Sign in first."})
    htmx = await client.post("/send", data={"content": "hi"}, headers={"HX-Request": "true"})
    assert (htmx.status_code, htmx.headers["hx-redirect"]) == (401, "/login")
    posted = await client.post("/send", data={"content": "hi"})
    assert (posted.status_code, posted.headers["location"]) == (303, "/login")
    for path in ("/healthz", "/metrics", "/static/app.css", "/login"):
        assert (await client.get(path)).status_code == 200, path
    assert "set-cookie" not in home.headers  # no anonymous owner in this mode


async def test_sign_in_chat_and_sign_out(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_user(app, "alice")
    page = html_tree.parse((await client.get("/login", params={"next": "/c/x"})).text)
    assert len(page.find_all("h1")) == 1
    labels = {label.text for label in page.find_all("label")}
    assert {"Username", "Password"} <= labels
    assert page.find("button").text == "Sign in"

    wrong = await sign_in(client, "alice", "not the password")
    nobody = await sign_in(client, "nobody", "not the password")
    for answer in (wrong, nobody):
        assert answer.status_code == 401
        assert html_tree.parse(answer.text).find(role="alert").text == WRONG

    signed = await sign_in(client, "alice", next="/c/x")
    assert (signed.status_code, signed.headers["location"]) == (303, "/c/x")
    cookie = cookie_of(signed)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    me = (await client.get("/api/me")).json()
    assert (me["name"], me["auth"], me["admin"], me["email"]) == ("alice", "password", False, None)

    chat = html_tree.parse((await client.get("/")).text)
    assert "alice" in chat.find(class_="account-name").text
    assert chat.find("form", action="/logout").find("button").text == "Sign out"
    cid = await new_conversation(client)
    started = await send(client, cid, "hello there")
    assert (await client.get(started["events_url"])).status_code == 200
    conversation = (await client.get(f"/api/conversations/{cid}")).json()
    assert conversation["messages"][-1]["status"] == "complete"

    out = await client.post("/logout")
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    assert (await client.get("/api/me")).status_code == 401


@pytest.mark.parametrize(
    "hostile",
    [
        "//evil.example",
        "/\\evil.example",
        "https:evil.example",
        "https://evil.example/",
        "%2F%2Fevil.example",
        "/%2F/evil.example",
        "/%5Cevil.example",
        "/%252F%252Fevil.example",
        "\t//evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "evil.example",
    ],
)
async def test_next_never_leads_to_another_site(
    app: FastAPI, client: httpx.AsyncClient, hostile: str
) -> None:
    assert safe_next(hostile) == "/"
    await add_user(app, "alice")
    signed = await sign_in(client, "alice", next=hostile)
    assert (signed.status_code, signed.headers["location"]) == (303, "/")
    page = html_tree.parse((await client.get("/login", params={"next": hostile})).text)
    assert page is not None  # signed in: the redirect, never to `hostile`


def test_next_keeps_paths_on_this_site() -> None:
    for path in ("/", "/c/abc", "/c/abc?x=1", "/settings"):
        assert safe_next(path) == path


async def test_cross_site_posts_with_the_cookie_are_refused(
    alice: httpx.AsyncClient, app: FastAPI
) -> None:
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    for path in ("/login", "/logout", "/api/conversations", "/api/tokens"):
        refused = await alice.post(path, headers=evil, json={"name": "x"})
        assert refused.status_code == 403, path
    assert (await alice.get("/api/me")).status_code == 200  # still signed in

    token = (await alice.post("/api/tokens", json={"name": "ci"})).json()["token"]
    async with client_for(app) as program:
        bearer = {"Authorization": f"Bearer {token}", **evil}
        assert (await program.post("/api/conversations", headers=bearer)).status_code == 201


async def test_a_session_given_before_sign_in_is_not_the_one_after(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await add_user(app, "alice")
    client.cookies.set(SESSION_COOKIE, "chosen-by-an-attacker", domain="testserver.local")
    signed = await sign_in(client, "alice")
    first = client.cookies[SESSION_COOKIE]
    assert first != "chosen-by-an-attacker" and first in cookie_of(signed)

    again = await sign_in(client, "alice")  # signing in again rotates it too
    assert again.status_code == 303
    second = client.cookies[SESSION_COOKIE]
    assert second != first
    async with client_for(app) as other:
        other.cookies.set(SESSION_COOKIE, first)
        await eventually(lambda: _status(other, "/api/me", 401), within=3)


async def _status(client: httpx.AsyncClient, path: str, expected: int) -> None:
    assert (await client.get(path)).status_code == expected


async def test_api_tokens_are_shown_once_and_work_until_revoked(
    alice: httpx.AsyncClient, app: FastAPI
) -> None:
    made = await alice.post("/api/tokens", json={"name": "ci"})
    assert made.status_code == 201
    body = made.json()
    assert {"id", "name", "token", "created_at"} <= set(body)
    listed = (await alice.get("/api/tokens")).json()
    assert [t["name"] for t in listed] == ["ci"]
    assert "token" not in listed[0] and body["token"] not in made.request.content.decode()

    async with client_for(app) as program:
        program.headers["Authorization"] = f"Bearer {body['token']}"
        assert (await program.get("/api/me")).json()["name"] == "alice"
        cid = await new_conversation(program)
        assert cid in {c["id"] for c in (await alice.get("/api/conversations")).json()}
        assert "set-cookie" not in (await program.get("/api/conversations")).headers

        assert (await alice.delete(f"/api/tokens/{body['id']}")).status_code == 204
        await eventually(lambda: _status(program, "/api/me", 401), within=3)
        assert (await alice.delete(f"/api/tokens/{body['id']}")).status_code == 404


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer ", "Bearer hxc_not-a-token", "Basic YWxpY2U6eA==", "hxc_x", "Bearer a b"],
)
async def test_a_malformed_or_wrong_token_is_401_even_with_a_cookie(
    alice: httpx.AsyncClient, authorization: str
) -> None:
    answer = await alice.get("/api/me", headers={"Authorization": authorization})
    assert answer.status_code == 401
    assert answer.json()["detail"] == "The API token is wrong, revoked or expired."


async def test_an_expired_token_is_401(alice: httpx.AsyncClient, app: FastAPI) -> None:
    body = (await alice.post("/api/tokens", json={"name": "short", "expires_in_days": 1})).json()
    bearer = {"Authorization": f"Bearer {body['token']}"}
    assert (await alice.get("/api/me", headers=bearer)).status_code == 200

    def expire(conn: Connection) -> None:
        past = utcnow() - timedelta(seconds=1)
        conn.execute(
            update(api_tokens).where(api_tokens.c.id == body["id"]).values(expires_at=past)
        )

    await app.state.store.run(True, expire)
    await eventually(lambda: _status_with(alice, bearer, 401), within=3)


async def _status_with(client: httpx.AsyncClient, headers: dict[str, str], expected: int) -> None:
    assert (await client.get("/api/me", headers=headers)).status_code == expected


async def test_a_disabled_user_is_out_on_the_next_request_and_their_stream_ends(
    make_settings: Callable[..., Settings],
) -> None:
    async with running_app(make_settings(auth="password", echo_delay_ms=50)) as app:
        await add_user(app, "alice")
        async with client_for(app) as alice:
            await sign_in(alice, "alice")
            cid = await new_conversation(alice)
            started = await send(alice, cid, " ".join(f"w{i}" for i in range(400)))  # 20 s
            stream = asyncio.create_task(alice.get(started["events_url"]))
            await asyncio.sleep(0.5)
            assert await app.state.accounts.store.set_disabled("alice", True)
            async with asyncio.timeout(5):  # long before the answer would end
                ended = await stream
            assert ended.status_code == 200 and "event: done" not in ended.text
            await eventually(lambda: _status(alice, "/api/me", 401), within=3)
            page = await alice.get("/")
            assert (page.status_code, page.headers["location"]) == (303, "/login?next=%2F")
            assert (await sign_in(alice, "alice")).status_code == 401


async def test_open_streams_end_with_their_own_sign_in_only(
    make_settings: Callable[..., Settings],
) -> None:
    """The open streams' sign-ins are checked together: revoking one token ends the
    stream opened with it, and neither the one of another token nor the cookie's."""
    settings = make_settings(auth="password", echo_delay_ms=50)
    async with running_app(settings) as app, signed_in(app, "alice") as alice:
        tokens = [(await alice.post("/api/tokens", json={"name": n})).json() for n in "ab"]
        streams = []
        for headers in ({"Authorization": f"Bearer {t['token']}"} for t in tokens):
            started = await send(alice, await new_conversation(alice), "w " * 60)  # 3 s
            streams.append(alice.get(started["events_url"], headers=headers))
        started = await send(alice, await new_conversation(alice), "w " * 60)
        streams.append(alice.get(started["events_url"]))
        running = [asyncio.create_task(stream) for stream in streams]
        await asyncio.sleep(0.3)
        assert (await alice.delete(f"/api/tokens/{tokens[0]['id']}")).status_code == 204
        revoked, other, cookie = await asyncio.gather(*running)
        assert "event: done" not in revoked.text and "event: delta" in revoked.text
        assert "event: done" in other.text and "event: done" in cookie.text


async def test_a_new_password_keeps_this_session_and_ends_the_others(
    app: FastAPI, alice: httpx.AsyncClient
) -> None:
    token = (await alice.post("/api/tokens", json={"name": "ci"})).json()["token"]
    async with client_for(app) as laptop:
        await sign_in(laptop, "alice")
        wrong = await alice.post(
            "/settings/password",
            data={"current_password": "nope-nope", "new_password": "a new password"},
        )
        assert wrong.status_code == 401
        short = await alice.post(
            "/settings/password", data={"current_password": PASSWORD, "new_password": "short"}
        )
        assert short.status_code == 422
        changed = await alice.post(
            "/settings/password",
            data={"current_password": PASSWORD, "new_password": "a new password"},
        )
        assert changed.status_code == 200 and "password is changed" in changed.text
        await eventually(lambda: _status(laptop, "/api/me", 401), within=3)
        await eventually(
            lambda: _status_with(laptop, {"Authorization": f"Bearer {token}"}, 401), within=3
        )
        assert (await alice.get("/api/me")).status_code == 200
        assert (await sign_in(laptop, "alice")).status_code == 401
        assert (await sign_in(laptop, "alice", "a new password")).status_code == 303


async def test_sql_and_html_in_a_username_are_only_text(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    name = "<script>alert(1)</script>' OR '1'='1'; DROP TABLE users; --"
    await add_user(app, name)
    assert (await sign_in(client, "' OR '1'='1", "x' OR '1'='1")).status_code == 401
    assert (await sign_in(client, name)).status_code == 303
    assert (await client.get("/api/me")).json()["name"] == name
    for path in ("/", "/settings"):
        page = await client.get(path)
        tree = html_tree.parse(page.text)
        assert name in tree.find(class_="account-name").text
        assert not [s for s in tree.find_all("script") if "src" not in s.attrs]


async def test_settings_show_a_new_token_once_and_revoke_it(alice: httpx.AsyncClient) -> None:
    page = html_tree.parse((await alice.get("/settings")).text)
    assert len(page.find_all("h1")) == 1
    assert page.find("form", action="/logout").find("button").text == "Sign out"
    made = await alice.post("/settings/tokens", data={"name": "laptop"})
    assert made.status_code == 201
    secret = html_tree.parse(made.text).find(id="new-token-value").attrs["value"]
    assert secret and secret.startswith("hxc_")
    again = await alice.get("/settings")
    assert secret not in again.text and "laptop" in again.text
    token_id = (await alice.get("/api/tokens")).json()[0]["id"]
    revoked = await alice.post(f"/settings/tokens/{token_id}/revoke")
    assert (revoked.status_code, revoked.headers["location"]) == (303, "/settings")
    assert (await alice.get("/api/tokens")).json() == []
    assert (await alice.post("/settings/tokens", data={"name": " "})).status_code == 422


async def test_signup_when_open(make_settings: Callable[..., Settings]) -> None:
    async with (
        running_app(make_settings(auth="password", signup="open")) as app,
        client_for(app) as client,
    ):
        assert "Create account" in (await client.get("/signup")).text
        assert "/signup" in (await client.get("/login")).text
        weak = await client.post("/signup", data={"username": "carol", "password": "short"})
        assert weak.status_code == 422
        made = await client.post("/signup", data={"username": "carol", "password": PASSWORD})
        assert (made.status_code, made.headers["location"]) == (303, "/")
        assert (await client.get("/api/me")).json()["name"] == "carol"
        async with client_for(app) as other:
            taken = await other.post("/signup", data={"username": "carol", "password": PASSWORD})
            assert taken.status_code == 409


async def test_signup_closed_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/signup")).status_code == 404
    assert (
        await client.post("/signup", data={"username": "x", "password": PASSWORD})
    ).status_code == 404
    assert "/signup" not in (await client.get("/login")).text


async def test_the_cookie_is_secure_over_https(app: FastAPI) -> None:
    await add_user(app, "alice")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        assert "Secure" in cookie_of(await sign_in(client, "alice"))


async def test_mode_none_has_no_account_pages_and_an_anonymous_me(
    make_settings: Callable[..., Settings],
) -> None:
    async with running_app(make_settings()) as app, client_for(app) as client:
        for path in ("/login", "/signup"):
            assert (await client.get(path)).status_code == 404, path
        settings_page = await client.get("/settings")  # export and import only (#12)
        assert settings_page.status_code == 200
        assert "Export all" in settings_page.text
        assert "API tokens" not in settings_page.text and "Sign out" not in settings_page.text
        assert (await client.post("/logout")).status_code == 404
        me = (await client.get("/api/me")).json()
        assert me["auth"] == "none" and me["name"] == "anonymous" and len(me["id"]) == 32
        assert (await client.get("/api/tokens")).status_code == 404
        assert (await client.post("/api/tokens", json={"name": "x"})).status_code == 404
        assert "Sign out" not in (await client.get("/")).text
