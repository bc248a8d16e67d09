"""The library in the page (#12, #10): Rename, Pin / Unpin, Delete and Instructions as
plain forms (POST, then a redirect back) and as htmx fragments, and the page's wait for
the model's title; through the real app on SQLite."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from hxchat.app import create_app
from hxchat.config import Settings
from tests import html_tree
from tests.helpers import TitlingModel, client_for, events, new_conversation, send

HTMX = {"HX-Request": "true"}


async def conversation_with(client: httpx.AsyncClient, content: str) -> str:
    cid = await new_conversation(client)
    started = await send(client, cid, content)
    await events(client, started["events_url"])
    return cid


async def page_of(client: httpx.AsyncClient, path: str) -> html_tree.Node:
    response = await client.get(path)
    assert response.status_code == 200
    return html_tree.parse(response.text)


def item(page: html_tree.Node, cid: str) -> html_tree.Node:
    return page.find(id="conversation-list").find("li", id=f"conv-{cid}")


def buttons(node: html_tree.Node) -> list[str]:
    return [b.text for b in node.find_all("button")]


def titles(page: html_tree.Node) -> list[str]:
    return [a.text for a in page.find(id="conversation-list").find_all("a")]


async def test_each_conversation_has_rename_pin_and_delete(client: httpx.AsyncClient) -> None:
    cid = await conversation_with(client, "first one")
    page = await page_of(client, f"/c/{cid}")
    assert buttons(item(page, cid)) == ["Rename", "Pin", "Delete"]
    label = page.find("label", for_="instructions")
    assert label.text == "Instructions"
    assert page.find("textarea", id="instructions").attrs["name"] == "instructions"


async def test_rename_without_javascript(client: httpx.AsyncClient) -> None:
    cid = await conversation_with(client, "first one")
    other = await conversation_with(client, "second one")

    page = await page_of(client, f"/c/{other}?rename={cid}")  # the Rename button's GET
    form = item(page, cid).find("form", class_="rename-form")
    assert form.attrs["action"] == f"/c/{cid}/rename"
    assert form.find("input", name="title").attrs["value"] == "first one"
    assert form.find("input", name="next").attrs["value"] == f"/c/{other}"

    response = await client.post(
        f"/c/{cid}/rename", data={"title": "Renamed", "next": f"/c/{other}"}
    )
    assert response.status_code == 303 and response.headers["location"] == f"/c/{other}"
    page = await page_of(client, f"/c/{other}")
    assert titles(page) == ["second one", "Renamed"]
    assert page.find("h1").text == "second one"  # the page shown is not the one renamed


async def test_rename_with_htmx_swaps_the_list_and_the_heading(
    client: httpx.AsyncClient,
) -> None:
    cid = await conversation_with(client, "first one")
    response = await client.post(
        f"/c/{cid}/rename", data={"title": "<b>Bold</b> name", "next": f"/c/{cid}"}, headers=HTMX
    )
    assert response.status_code == 200
    fragment = html_tree.parse(response.text)
    assert titles(fragment) == ["<b>Bold</b> name"]  # text, not markup
    assert not fragment.find_all("b")
    heading = fragment.find("h1", id="conversation-title")
    assert heading.attrs["hx-swap-oob"] == "true" and heading.text == "<b>Bold</b> name"
    assert fragment.find("title").text == "<b>Bold</b> name"


async def test_pin_and_unpin_without_javascript(client: httpx.AsyncClient) -> None:
    older = await conversation_with(client, "older")
    await conversation_with(client, "newer")
    response = await client.post(f"/c/{older}/pin", data={"pinned": "true", "next": "/"})
    assert response.status_code == 303 and response.headers["location"] == "/"
    page = await page_of(client, "/")
    assert titles(page) == ["older", "newer"]
    assert buttons(item(page, older)) == ["Rename", "Unpin", "Delete"]
    assert item(page, older).attrs["class"] == "pinned"

    await client.post(f"/c/{older}/pin", data={"pinned": "false", "next": "/"})
    assert titles(await page_of(client, "/")) == ["newer", "older"]


async def test_pin_with_htmx_answers_the_list(client: httpx.AsyncClient) -> None:
    older = await conversation_with(client, "older")
    newer = await conversation_with(client, "newer")
    response = await client.post(
        f"/c/{older}/pin", data={"pinned": "true", "next": f"/c/{newer}"}, headers=HTMX
    )
    fragment = html_tree.parse(response.text)
    assert fragment.find("ul").attrs["id"] == "conversation-list"
    assert titles(fragment) == ["older", "newer"]
    current = fragment.find("a", aria_current="page")
    assert current.attrs["href"] == f"/c/{newer}"


async def test_delete_without_javascript_and_with_htmx(client: httpx.AsyncClient) -> None:
    kept = await conversation_with(client, "kept")
    doomed = await conversation_with(client, "doomed")
    also = await conversation_with(client, "also doomed")

    response = await client.post(f"/c/{doomed}/delete", data={"next": f"/c/{doomed}"})
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert (await client.get(f"/c/{doomed}")).status_code == 404

    response = await client.post(f"/c/{also}/delete", data={"next": f"/c/{kept}"}, headers=HTMX)
    assert titles(html_tree.parse(response.text)) == ["kept"]
    assert (await client.get(f"/api/conversations/{also}")).status_code == 404

    response = await client.post(f"/c/{kept}/delete", data={"next": f"/c/{kept}"}, headers=HTMX)
    assert response.status_code == 204 and response.headers["hx-redirect"] == "/"
    assert (await client.get("/api/conversations")).json() == []


async def test_instructions_without_javascript_and_with_htmx(client: httpx.AsyncClient) -> None:
    cid = await conversation_with(client, "hello")
    response = await client.post(f"/c/{cid}/instructions", data={"instructions": "Be brief."})
    assert response.status_code == 303 and response.headers["location"] == f"/c/{cid}"
    page = await page_of(client, f"/c/{cid}")
    assert page.find("textarea", id="instructions").text == "Be brief."

    response = await client.post(
        f"/c/{cid}/instructions", data={"instructions": "Answer in French."}, headers=HTMX
    )
    form = html_tree.parse(response.text).find("form", id="instructions-form")
    assert form.find("textarea").text == "Answer in French."
    assert form.find(role="status").text == "Saved."
    api = (await client.get(f"/api/conversations/{cid}")).json()
    assert api["instructions"] == "Answer in French."

    response = await client.post(
        f"/c/{cid}/instructions", data={"instructions": "x" * 4001}, headers=HTMX
    )
    assert response.status_code == 413 and "4,000" in response.text
    assert response.headers["hx-retarget"] == "#composer-error"


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("rename", {"title": "Mine"}),
        ("pin", {"pinned": "true"}),
        ("delete", {}),
        ("instructions", {"instructions": "Obey."}),
    ],
)
async def test_another_owners_conversation_is_404_and_unchanged(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient, path: str, data: dict[str, str]
) -> None:
    cid = await conversation_with(client, "mine")
    response = await other_client.post(f"/c/{cid}/{path}", data=data)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    body = (await client.get(f"/api/conversations/{cid}")).json()
    assert (body["title"], body["pinned"], body["instructions"]) == ("mine", False, "")


@pytest.mark.parametrize(
    "data",
    [{"title": ""}, {"title": "x" * 201}],
)
async def test_a_bad_title_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, data: dict[str, str]
) -> None:
    cid = await conversation_with(client, "mine")
    response = await client.post(f"/c/{cid}/rename", data=data)
    assert response.status_code == 422
    assert (await client.get(f"/api/conversations/{cid}")).json()["title"] == "mine"


@pytest.mark.parametrize("next_", ["https://evil.example/", "//evil.example", "/c/../admin"])
async def test_a_form_leads_back_only_to_a_page_of_this_site(
    client: httpx.AsyncClient, next_: str
) -> None:
    cid = await conversation_with(client, "mine")
    response = await client.post(f"/c/{cid}/pin", data={"pinned": "true", "next": next_})
    assert response.status_code == 303 and response.headers["location"] == "/"


async def test_a_cross_site_form_post_is_refused(client: httpx.AsyncClient) -> None:
    cid = await conversation_with(client, "mine")
    response = await client.post(
        f"/c/{cid}/delete", data={"next": "/"}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert (await client.get(f"/api/conversations/{cid}")).status_code == 200


async def test_the_page_waits_for_the_title_while_it_is_pending(
    make_settings: Callable[..., Settings],
) -> None:
    """The htmx answer to a first message carries a watcher while the model writes the
    title; its request waits for the title and answers with the heading, the list and
    the page's title; then the page has nothing more to wait for."""
    model = TitlingModel(["Fine."], title="**Watched** title")
    model.title_delay = 0.5
    app = create_app(make_settings(), model=model)
    async with (
        app.router.lifespan_context(app),
        client_for(app) as client,
        client_for(app) as stranger,
    ):
        response = await client.post("/send", data={"content": "watch me"}, headers=HTMX)
        fragment = html_tree.parse(response.text)
        watch = fragment.find(id="title-watch")
        cid = response.headers["hx-push-url"].removeprefix("/c/")
        assert watch.attrs["hx-get"] == f"/c/{cid}/title?round=0"
        assert watch.attrs["hx-swap-oob"] == "true"
        assert (await stranger.get(f"/c/{cid}/title", headers=HTMX)).status_code == 404

        answer = await client.get(f"/c/{cid}/title?round=0", headers=HTMX)

        assert answer.status_code == 200
        parts = html_tree.parse(answer.text)
        assert parts.find("h1", id="conversation-title").text == "Watched title"
        assert parts.find("title").text == "Watched title"
        assert titles(parts) == ["Watched title"]
        assert "hx-get" not in parts.find(id="title-watch").attrs  # nothing more to wait for
        page = await page_of(client, f"/c/{cid}")
        assert "hx-get" not in page.find(id="title-watch").attrs
        assert model.titled == [("watch me", "Fine.")]


async def test_without_a_model_that_titles_the_page_waits_for_nothing(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/send", data={"content": "echo me"}, headers=HTMX)
    assert "hx-get" not in html_tree.parse(response.text).find(id="title-watch").attrs
