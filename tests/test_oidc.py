"""OpenID Connect sign-in through the real app (ASGI) and a real provider the tests
start (`tests/oidc_provider.py`): the authorization code flow with PKCE, the state and
nonce checks, the allowed e-mail domains, and the readable page of every failure.
docs/api.md#accounts describes what is checked here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from fastapi import FastAPI

from hxchat.auth.oidc import STATE_COOKIE
from hxchat.auth.secrets import SESSION_COOKIE
from hxchat.config import Settings
from tests import html_tree
from tests.helpers import client_for, running_app
from tests.oidc_provider import Provider, running_provider
from tests.servers import free_port


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running_provider(require_nonce=True) as p:
        yield p


@pytest.fixture
def settings(make_settings: Callable[..., Settings], provider: Provider) -> Settings:
    return make_settings(
        auth="password,oidc",
        oidc_issuer=provider.issuer,
        oidc_client_id="hxchat-tests",
        oidc_client_secret="s3cret",
    )


async def start(client: httpx.AsyncClient, next: str = "/") -> str:
    """Begin a sign-in: the provider's authorization URL hxchat redirects to."""
    answer = await client.get("/auth/oidc/login", params={"next": next})
    assert answer.status_code == 303, answer.text
    assert STATE_COOKIE in answer.headers["set-cookie"]
    return answer.headers["location"]


async def sign_in(client: httpx.AsyncClient, provider: Provider, sub: str) -> httpx.Response:
    back = await provider.authorize(await start(client), sub)
    return await client.get(back)


def alert(answer: httpx.Response) -> str:
    return html_tree.parse(answer.text).find(role="alert").text


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def test_the_sign_in_page_offers_the_provider(client: httpx.AsyncClient) -> None:
    page = html_tree.parse((await client.get("/login", params={"next": "/c/x"})).text)
    link = page.find("a", class_="sign-in-provider")
    assert link.text == "Sign in with 127.0.0.1"
    assert link.attrs["href"] == "/auth/oidc/login?next=/c/x"
    assert page.find("button").text == "Sign in"  # and the password form, in password,oidc


async def test_only_oidc_has_no_password_form(
    make_settings: Callable[..., Settings], provider: Provider
) -> None:
    settings = make_settings(
        auth="oidc", oidc_issuer=provider.issuer, oidc_client_id="x", oidc_client_secret="s3cret"
    )
    async with running_app(settings) as app, client_for(app) as client:
        page = html_tree.parse((await client.get("/login")).text)
        assert page.find_all("form", action="/login") == []
        assert page.find("a", class_="sign-in-provider").text == "Sign in with 127.0.0.1"


async def test_sign_in_with_the_provider_and_out(
    client: httpx.AsyncClient, provider: Provider
) -> None:
    provider.person(
        "sub-ada", preferred_username="ada", email="ada@example.org", email_verified=True
    )
    url = await start(client, next="/c/x")
    asked = parse_qs(urlsplit(url).query)
    assert url.startswith(provider.issuer + "/oauth2/authorize?")
    assert asked["redirect_uri"] == ["http://testserver/auth/oidc/callback"]
    assert asked["code_challenge_method"] == ["S256"] and asked["code_challenge"][0]
    assert asked["nonce"][0] and asked["state"][0]
    assert asked["scope"] == ["openid email profile"]

    back = await client.get(await provider.authorize(url, "sub-ada"))
    assert (back.status_code, back.headers["location"]) == (303, "/c/x")
    cookies = back.headers.get_list("set-cookie")
    assert any(c.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in c for c in cookies)
    assert any(c.startswith(f"{STATE_COOKIE}=;") for c in cookies)  # the state is spent
    me = (await client.get("/api/me")).json()
    assert (me["name"], me["email"], me["auth"]) == ("ada", "ada@example.org", "oidc")

    chat = html_tree.parse((await client.get("/")).text)
    assert "ada" in chat.find(class_="account-name").text
    assert (await client.post("/logout")).headers["location"] == "/login"
    assert (await client.get("/api/me")).status_code == 401

    again = await sign_in(client, provider, "sub-ada")  # the same person, the same user
    assert again.status_code == 303
    assert (await client.get("/api/me")).json()["id"] == me["id"]


async def test_users_are_keyed_by_issuer_and_subject(
    app: FastAPI, client: httpx.AsyncClient, other_client: httpx.AsyncClient, provider: Provider
) -> None:
    for sub in ("sub-bo-1", "sub-bo-2"):
        provider.person(sub, preferred_username="bo")
    assert (await sign_in(client, provider, "sub-bo-1")).status_code == 303
    assert (await sign_in(other_client, provider, "sub-bo-2")).status_code == 303
    first, second = [(await c.get("/api/me")).json() for c in (client, other_client)]
    assert first["name"] == "bo" and second["name"].startswith("bo-")  # "bo" was taken
    assert first["id"] != second["id"]


async def test_a_state_that_does_not_match_is_refused(
    client: httpx.AsyncClient, provider: Provider
) -> None:
    provider.person("sub-cy", preferred_username="cy")
    back = await provider.authorize(await start(client), "sub-cy")
    forged = await client.get(with_query(back, state="not-the-state"))
    assert forged.status_code == 400
    assert "state does not match" in alert(forged)
    assert (await client.get("/api/me")).status_code == 401


async def test_a_callback_without_the_browsers_state_is_refused(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient, provider: Provider
) -> None:
    """Login CSRF: a callback made for one browser, opened in another."""
    provider.person("sub-di", preferred_username="di")
    back = await provider.authorize(await start(client), "sub-di")
    other = await other_client.get(back)
    assert other.status_code == 400
    assert "not started in this browser" in alert(other)


async def test_a_nonce_that_does_not_match_is_refused(
    client: httpx.AsyncClient, provider: Provider
) -> None:
    provider.person("sub-ed", preferred_username="ed")
    url = with_query(await start(client), nonce="another-nonce")
    back = await client.get(await provider.authorize(url, "sub-ed"))
    assert back.status_code == 400
    assert "could not be verified" in alert(back)
    assert "Traceback" not in back.text
    assert (await client.get("/api/me")).status_code == 401


async def test_a_refusal_and_a_provider_error_show_a_readable_page(
    client: httpx.AsyncClient, provider: Provider
) -> None:
    denied = await client.get(await provider.authorize(await start(client), "x", deny=True))
    assert denied.status_code == 403
    assert "did not let you sign in (access_denied)" in alert(denied)
    await start(client)
    state = parse_qs(urlsplit(await start(client)).query)["state"][0]
    failed = await client.get(
        "/auth/oidc/callback", params={"error": "server_error", "state": state}
    )
    assert failed.status_code == 400 and "server_error" in alert(failed)
    nothing = await client.get("/auth/oidc/callback")
    assert nothing.status_code == 400


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({"email": "fi@team.example", "email_verified": True}, 303),
        ({"email": "fi@TEAM.example", "email_verified": True}, 303),
        ({"email": "fi@other.example", "email_verified": True}, 403),
        ({"email": "fi@team.example", "email_verified": False}, 403),
        ({"email": "fi@team.example"}, 403),
        ({}, 403),
    ],
)
async def test_only_verified_addresses_of_the_allowed_domains(
    make_settings: Callable[..., Settings],
    provider: Provider,
    claims: dict[str, object],
    status: int,
) -> None:
    settings = make_settings(
        auth="oidc",
        oidc_issuer=provider.issuer,
        oidc_client_id="hxchat-tests",
        oidc_client_secret="s3cret",
        oidc_allowed_domains="team.example, @lab.example",
    )
    sub = f"sub-fi-{status}-{len(claims)}-{claims.get('email_verified')}"
    provider.person(sub, preferred_username="fi", **claims)
    async with running_app(settings) as app, client_for(app) as client:
        back = await sign_in(client, provider, sub)
        assert back.status_code == status
        if status == 403:
            assert "verified e-mail address of lab.example, team.example" in alert(back)
            assert (await client.get("/api/me")).status_code == 401


async def test_a_disabled_user_is_refused(
    app: FastAPI, client: httpx.AsyncClient, provider: Provider
) -> None:
    provider.person("sub-gu", preferred_username="gu")
    assert (await sign_in(client, provider, "sub-gu")).status_code == 303
    await client.post("/logout")
    assert await app.state.accounts.store.set_disabled("gu", True)
    back = await sign_in(client, provider, "sub-gu")
    assert back.status_code == 403 and "disabled" in alert(back)


async def test_an_unreachable_provider_is_a_readable_page(
    make_settings: Callable[..., Settings],
) -> None:
    issuer = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(
        auth="oidc", oidc_issuer=issuer, oidc_client_id="x", oidc_client_secret="s3cret"
    )
    async with running_app(settings) as app, client_for(app) as client:
        answer = await client.get("/auth/oidc/login")
        assert answer.status_code == 400
        assert "could not be reached" in alert(answer)


async def test_no_oidc_routes_without_oidc(
    make_settings: Callable[..., Settings],
) -> None:
    for mode in ("none", "password"):
        async with running_app(make_settings(auth=mode)) as app, client_for(app) as client:
            assert (await client.get("/auth/oidc/login")).status_code == 404
            assert (await client.get("/auth/oidc/callback")).status_code == 404
