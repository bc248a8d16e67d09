"""Share links (#12) through the real app: a snapshot under a random link, readable
signed out in mode `none`, behind sign-in with `users`, gone after `Stop sharing` and
after the conversation is deleted, and no way from the link into the owner's routes.
The API on SQLite and PostgreSQL; the page's Share controls with and without htmx."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from hxchat.config import Settings, load_settings
from hxchat.errors import ConfigError
from hxchat.web.security import CONTENT_SECURITY_POLICY
from tests import html_tree
from tests.helpers import (
    add_user,
    app_on,
    cheap_password_hashing,
    client_for,
    events,
    new_conversation,
    running_app,
    send,
    sign_in,
)

HTMX = {"HX-Request": "true"}
LINK = re.compile(r"^/s/[A-Za-z0-9_-]{32,}$")


@pytest.fixture(autouse=True)
def _cheap_hashing() -> Iterator[None]:
    with cheap_password_hashing():
        yield


async def chat(client: httpx.AsyncClient, cid: str, *questions: str) -> None:
    for question in questions:
        started = await send(client, cid, question)
        await events(client, started["events_url"])


async def share(client: httpx.AsyncClient, cid: str) -> str:
    response = await client.post(f"/api/conversations/{cid}/share")
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"url"} and LINK.match(body["url"]), body
    return str(body["url"])


def said(page: html_tree.Node) -> list[tuple[str | None, str]]:
    """(role, text) of each message the page shows."""
    return [(a.attrs.get("data-role"), a.text.strip()) for a in page.find_all("article")]


async def test_a_link_shows_the_path_as_it_was_to_anyone_and_stops(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    async with (
        app_on(make_settings, database_url) as app,
        client_for(app) as owner,
        client_for(app) as stranger,
    ):
        cid = await new_conversation(owner)
        await chat(owner, cid, "first **words**")
        first = await share(owner, cid)
        await chat(owner, cid, "added later")

        response = await stranger.get(first)  # a browser that never saw the app
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["x-robots-tag"] == "noindex"
        assert response.headers["cache-control"] == "no-store"
        page = html_tree.parse(response.text)
        assert page.find("meta", name="robots").attrs["content"] == "noindex"
        assert page.find("title").text == "first words"
        assert [role for role, _ in said(page)] == ["user", "assistant"]
        assert page.find("article", data_role="assistant").find("strong").text == "words"
        assert "added later" not in response.text
        # No composer, no controls, nothing that leads into the owner's routes.
        assert not page.find_all("form") and not page.find_all("textarea")
        assert not page.find_all("button")
        assert cid not in response.text and "/c/" not in response.text
        assert not [a for a in page.find_all("a") if (a.attrs.get("href") or "").startswith("/")]

        second = await share(owner, cid)  # a new snapshot under a new link
        assert second != first
        now = html_tree.parse((await stranger.get(second)).text)
        assert "added later" in said(now)[-1][1]
        assert "added later" not in (await stranger.get(first)).text  # the first keeps its own

        stopped = await owner.delete(f"/api/conversations/{cid}/share")
        assert stopped.status_code == 204
        for link in (first, second):
            gone = await stranger.get(link)
            assert gone.status_code == 404 and "added later" not in gone.text
        assert (await owner.delete(f"/api/conversations/{cid}/share")).status_code == 204


async def test_deleting_the_conversation_removes_its_links(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    async with app_on(make_settings, database_url) as app, client_for(app) as owner:
        cid = await new_conversation(owner)
        await chat(owner, cid, "soon gone")
        link = await share(owner, cid)
        assert (await owner.delete(f"/api/conversations/{cid}")).status_code == 204
        assert (await owner.get(link)).status_code == 404
        assert await app.state.shares.snapshot(link.removeprefix("/s/")) is None


async def test_another_owners_conversation_and_odd_requests_are_refused(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    async with (
        app_on(make_settings, database_url, echo_delay_ms=40) as app,
        client_for(app) as owner,
        client_for(app) as other,
    ):
        cid = await new_conversation(owner)
        assert (await owner.post(f"/api/conversations/{cid}/share")).status_code == 422  # empty
        await chat(owner, cid, "mine")
        link = await share(owner, cid)
        for client, target in ((other, cid), (owner, "f" * 32), (owner, "x%00y")):
            posted = await client.post(f"/api/conversations/{target}/share")
            assert posted.status_code == 404 and posted.json()["detail"]
            assert (await client.delete(f"/api/conversations/{target}/share")).status_code == 404
        assert (await other.get(link)).status_code == 200  # the link still works

        started = await send(owner, cid, " ".join(f"w{i}" for i in range(80)))
        busy = await owner.post(f"/api/conversations/{cid}/share")
        assert busy.status_code == 409 and "still being written" in busy.json()["detail"]
        await events(owner, started["events_url"])

        for token in ("x", "a" * 200, "%00", "%F0%9F%98%80", link.removeprefix("/s/")[:-1]):
            response = await other.get(f"/s/{token}")
            assert response.status_code == 404, token
            assert "mine" not in response.text


async def test_a_viewer_of_the_link_cannot_reach_the_conversation(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    cid = await new_conversation(client)
    await chat(client, cid, "private")
    link = await share(client, cid)
    assert (await other_client.get(link)).status_code == 200
    for method, path in (
        ("GET", f"/c/{cid}"),
        ("GET", f"/api/conversations/{cid}"),
        ("POST", f"/api/conversations/{cid}/messages"),
        ("POST", f"/api/conversations/{cid}/share"),
        ("DELETE", f"/api/conversations/{cid}/share"),
        ("POST", f"/c/{cid}/share"),
        ("POST", f"/c/{cid}/share/stop"),
        ("DELETE", f"/api/conversations/{cid}"),
    ):
        kwargs: dict[str, Any] = {"json": {"content": "hi"}} if "messages" in path else {}
        response = await other_client.request(method, path, **kwargs)
        assert response.status_code == 404, (method, path)
    assert (await other_client.get("/api/conversations")).json() == []
    assert (await client.get(link)).status_code == 200  # nothing of it changed


async def test_with_accounts_a_link_needs_a_signed_in_user_unless_anyone(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(auth="password")
    assert settings.share_mode == "users"
    async with (
        running_app(settings) as app,
        client_for(app) as alice,
        client_for(app) as bob,
        client_for(app) as nobody,
    ):
        for name, client in (("alice", alice), ("bob", bob)):
            await add_user(app, name)
            assert (await sign_in(client, name)).status_code == 303
        cid = await new_conversation(alice)
        await chat(alice, cid, "for the team")
        link = await share(alice, cid)
        refused = await nobody.get(link)
        assert refused.status_code == 303
        assert refused.headers["location"].startswith("/login?next=%2Fs%2F")
        assert "for the team" in (await bob.get(link)).text
        assert (await bob.delete(f"/api/conversations/{cid}/share")).status_code == 404

    async with (
        running_app(make_settings(auth="password", share="anyone")) as app,
        client_for(app) as carol,  # the same database: another name
        client_for(app) as nobody,
    ):
        await add_user(app, "carol")
        await sign_in(carol, "carol")
        cid = await new_conversation(carol)
        await chat(carol, cid, "for everyone")
        link = await share(carol, cid)
        assert "for everyone" in (await nobody.get(link)).text
        assert (await nobody.get(f"/c/{cid}")).status_code == 303  # still signed out


async def test_share_off_removes_every_share_route_and_the_control(
    make_settings: Callable[..., Settings],
) -> None:
    async with running_app(make_settings(share="off")) as app, client_for(app) as client:
        cid = await new_conversation(client)
        await chat(client, cid, "not shared")
        assert (await client.post(f"/api/conversations/{cid}/share")).status_code == 404
        assert (await client.delete(f"/api/conversations/{cid}/share")).status_code == 404
        assert (await client.post(f"/c/{cid}/share")).status_code == 404
        assert (await client.get("/s/" + "a" * 32)).status_code == 404
        page = html_tree.parse((await client.get(f"/c/{cid}")).text)
        assert not page.find_all(id="share-panel")
        assert "Share" not in [b.text.strip() for b in page.find_all("button")]


def test_users_without_accounts_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigError, match="HXCHAT_SHARE"):
        load_settings(share="users")
    assert load_settings().share_mode == "anyone"
    assert load_settings(auth="header").share_mode == "users"


# -- the page's Share and Stop sharing -------------------------------------------------


def buttons(node: html_tree.Node) -> list[str]:
    return [b.text.strip() for b in node.find_all("button")]


async def test_share_and_stop_sharing_as_plain_forms(client: httpx.AsyncClient) -> None:
    cid = await new_conversation(client)
    page = html_tree.parse((await client.get(f"/c/{cid}")).text)
    assert buttons(page.find(id="share-panel")) == ["Share"]
    await chat(client, cid, "hello there")

    posted = await client.post(f"/c/{cid}/share")
    assert posted.status_code == 303
    location = posted.headers["location"]
    assert location.startswith(f"/c/{cid}?shared=")
    page = html_tree.parse((await client.get(location)).text)
    panel = page.find(id="share-panel")
    url = panel.find("input", id="share-link").attrs["value"] or ""
    assert url.startswith("http://testserver/s/")
    assert page.find("label", for_="share-link").text == "Share link"
    assert "hidden" in panel.find("button", class_="copy-link").attrs  # it needs JavaScript
    assert "Stop sharing" in buttons(panel)
    shared = await client.get(url.removeprefix("http://testserver"))
    assert shared.status_code == 200 and "hello there" in shared.text

    later = html_tree.parse((await client.get(f"/c/{cid}")).text).find(id="share-panel")
    assert not later.find_all("input")  # the link is shown once: only its digest is kept
    assert buttons(later) == ["Share", "Stop sharing"]
    foreign = await client.get(f"/c/{cid}?shared=" + "b" * 32)
    assert not html_tree.parse(foreign.text).find(id="share-panel").find_all("input")

    stopped = await client.post(f"/c/{cid}/share/stop")
    assert stopped.status_code == 303 and stopped.headers["location"].startswith(f"/c/{cid}")
    assert (await client.get(url.removeprefix("http://testserver"))).status_code == 404
    page = html_tree.parse((await client.get(f"/c/{cid}")).text)
    assert buttons(page.find(id="share-panel")) == ["Share"]


async def test_share_with_htmx_swaps_the_panel_alone(client: httpx.AsyncClient) -> None:
    cid = await new_conversation(client)
    await chat(client, cid, "hello htmx")
    response = await client.post(f"/c/{cid}/share", headers=HTMX)
    assert response.status_code == 200
    fragment = html_tree.parse(response.text)
    (panel,) = [n for n in fragment.children if isinstance(n, html_tree.Node)]
    assert panel.attrs["id"] == "share-panel"
    url = panel.find("input", id="share-link").attrs["value"] or ""
    assert buttons(panel) == ["Copy link", "Stop sharing"]
    assert "hello htmx" in (await client.get(url.removeprefix("http://testserver"))).text

    stopped = await client.post(f"/c/{cid}/share/stop", headers=HTMX)
    assert buttons(html_tree.parse(stopped.text).find(id="share-panel")) == ["Share"]
    assert (await client.get(url.removeprefix("http://testserver"))).status_code == 404


async def test_a_new_conversation_gets_its_share_control_with_its_first_message(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/send", data={"content": "brand new"}, headers=HTMX)
    assert response.status_code == 200
    panel = html_tree.parse(response.text).find(id="share-panel")
    assert panel.attrs["hx-swap-oob"] == "true" and buttons(panel) == ["Share"]


async def test_shares_count_against_the_owners_rate(
    make_settings: Callable[..., Settings],
) -> None:
    """Each share copies the path: an owner cannot fill the database with copies."""
    async with running_app(make_settings(rate_limit="3/minute")) as app, client_for(app) as owner:
        cid = await new_conversation(owner)
        await chat(owner, cid, "one")  # the first of the three
        await share(owner, cid)
        await share(owner, cid)
        refused = await owner.post(f"/api/conversations/{cid}/share")
        assert refused.status_code == 429 and refused.headers["retry-after"]
        assert (await owner.post(f"/c/{cid}/share")).status_code == 429
