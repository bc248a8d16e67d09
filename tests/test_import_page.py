"""The settings page's export link and import form, and a conversation's export links
(#12): plain HTML that works without JavaScript, POST-redirect-GET, in mode `none` and
with accounts."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from hxchat.config import Settings
from tests import html_tree
from tests.helpers import (
    add_user,
    cheap_password_hashing,
    client_for,
    events,
    new_conversation,
    running_app,
    send,
    sign_in,
)

ONE = {
    "format": "hxchat",
    "version": 1,
    "conversations": [
        {
            "id": "a",
            "title": "Brought along",
            "messages": [{"id": 1, "parent_id": None, "role": "user", "content": "hi"}],
        }
    ],
}


def upload(data: bytes) -> dict[str, tuple[str, bytes, str]]:
    return {"file": ("export.json", data, "application/json")}


async def test_the_settings_page_offers_export_all_and_an_import_form(
    client: httpx.AsyncClient,
) -> None:
    page = html_tree.parse((await client.get("/")).text)
    assert page.find("nav").find("a", href="/settings").text == "Settings"  # mode none
    settings = html_tree.parse((await client.get("/settings")).text)
    assert settings.find("a", href="/api/export").text == "Export all"
    form = settings.find("form", action="/settings/import")
    assert (form.attrs["method"], form.attrs["enctype"]) == ("post", "multipart/form-data")
    field = form.find("input", type="file")
    assert field.attrs["name"] == "file"
    assert form.find("label", for_=field.attrs["id"]).text == "Conversations file"
    assert form.find("button", type="submit").text == "Import"


async def test_an_import_redirects_to_the_settings_page_that_says_so(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/settings/import", files=upload(json.dumps(ONE).encode()))
    assert response.status_code == 303
    assert response.headers["location"] == "/settings?imported=1#import-heading"
    page = html_tree.parse((await client.get(response.headers["location"])).text)
    assert page.find(role="status").text == (
        "Imported 1 conversation; they are in your conversation list."
    )
    listed = (await client.get("/api/conversations")).json()
    assert [c["title"] for c in listed] == ["Brought along"]


async def test_a_refused_import_shows_the_reason_next_to_the_form(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/settings/import", files=upload(b'[{"mapping": {'))
    assert response.status_code == 422
    page = html_tree.parse(response.text)
    alert = page.find(role="alert")
    assert "cut off" in alert.text
    assert page.find("form", action="/settings/import")  # the form, to try again
    assert (await client.get("/api/conversations")).json() == []


async def test_a_conversation_page_links_its_markdown_and_json_export(
    client: httpx.AsyncClient,
) -> None:
    cid = await new_conversation(client)
    await events(client, (await send(client, cid, "export me"))["events_url"])
    page = html_tree.parse((await client.get(f"/c/{cid}")).text)
    links = {a.text: str(a.attrs["href"]) for a in page.find_all("a", download=None)}
    assert links == {
        "Export Markdown": f"/api/conversations/{cid}/export?format=md",
        "Export JSON": f"/api/conversations/{cid}/export?format=json",
    }
    for href in links.values():
        assert (await client.get(href)).status_code == 200


async def test_with_accounts_the_import_is_the_signed_in_users(
    make_settings: Callable[..., Settings],
) -> None:
    with cheap_password_hashing():
        async with running_app(make_settings(auth="password")) as app:
            await add_user(app, "alice")
            await add_user(app, "bob")
            async with client_for(app) as alice, client_for(app) as bob:
                await sign_in(alice, "alice")
                await sign_in(bob, "bob")
                page = html_tree.parse((await alice.get("/settings")).text)
                assert page.find("a", href="/api/export").text == "Export all"
                imported = await alice.post(
                    "/settings/import", files=upload(json.dumps(ONE).encode())
                )
                assert imported.status_code == 303
                assert [c["title"] for c in (await alice.get("/api/conversations")).json()] == [
                    "Brought along"
                ]
                assert (await bob.get("/api/conversations")).json() == []
                assert (await bob.get("/api/export")).json()["conversations"] == []


async def test_signed_out_an_import_is_refused(make_settings: Callable[..., Settings]) -> None:
    async with running_app(make_settings(auth="password")) as app, client_for(app) as client:
        response = await client.post("/api/import", json=ONE)
        assert response.status_code == 401
        page = await client.post("/settings/import", files=upload(json.dumps(ONE).encode()))
        assert (page.status_code, page.headers["location"]) == (303, "/login")
