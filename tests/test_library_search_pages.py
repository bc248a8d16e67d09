"""The sidebar's search (#12) as HTML: the field, the page a plain form gets, the list
htmx swaps in, matched words in <mark> and everything else escaped."""

from __future__ import annotations

import httpx

from tests import html_tree
from tests.helpers import events, new_conversation, send

HTMX = {"HX-Request": "true"}


async def answered(client: httpx.AsyncClient, content: str) -> tuple[str, int, int]:
    cid = await new_conversation(client)
    started = await send(client, cid, content)
    _, evs = await events(client, started["events_url"])
    return cid, started["message_id"], evs[-1].json()["message_id"]


async def test_the_sidebar_has_the_search_field(client: httpx.AsyncClient) -> None:
    page = html_tree.parse((await client.get("/")).text)
    nav = page.find("nav", aria_label="Conversations")
    field = nav.find("input", type="search")
    assert page.find("label", for_=field.attrs["id"]).text == "Search conversations"
    assert field.attrs["name"] == "q"
    assert field.attrs["hx-get"] == "/search"
    assert "keyup changed delay:300ms" in (field.attrs["hx-trigger"] or "")
    assert field.attrs["hx-target"] == "#conversation-list"
    # Without JavaScript: the field submits a plain GET form to /search.
    form = page.find("form", id=field.attrs["form"])
    assert (form.attrs["method"], form.attrs["action"]) == ("get", "/search")
    # The composer stays the page's first form.
    assert page.find("form").attrs["id"] == "composer"


async def test_a_plain_search_shows_the_page_with_marked_results(
    client: httpx.AsyncClient,
) -> None:
    cid, question, answer = await answered(client, "Where do narwhals live?")
    await answered(client, "something else entirely")
    response = await client.get("/search", params={"q": "narwhal"})
    assert response.status_code == 200
    page = html_tree.parse(response.text)
    assert page.find("input", type="search").attrs["value"] == "narwhal"
    results = page.find(id="conversation-list")
    links = [str(a.attrs["href"]) for a in results.find_all("a")]
    assert sorted(links) == sorted([f"/c/{cid}#msg-{question}", f"/c/{cid}#msg-{answer}"])
    assert {mark.text for mark in results.find_all("mark")} == {"narwhals"}
    assert "something else" not in results.text
    # The link lands on a message the conversation shows.
    shown = html_tree.parse((await client.get(f"/c/{cid}")).text)
    assert shown.find("article", id=f"msg-{answer}")


async def test_htmx_gets_only_the_list(client: httpx.AsyncClient) -> None:
    cid, _, _ = await answered(client, "Café au lait")
    response = await client.get("/search", params={"q": "cafe"}, headers=HTMX)
    assert response.status_code == 200 and "<html" not in response.text
    assert "HX-Request" in response.headers["vary"]
    results = html_tree.parse(response.text).find("ul", id="conversation-list")
    assert [mark.text for mark in results.find_all("mark")][:2] == ["Café", "Café"]
    # Cleared, the field brings the conversations back, the page's own one marked.
    cleared = await client.get(f"/search?q=&conversation_id={cid}", headers=HTMX)
    listed = html_tree.parse(cleared.text)
    assert [a.attrs["href"] for a in listed.find_all("a")] == [f"/c/{cid}"]
    assert listed.find("a").attrs["aria-current"] == "page"


async def test_results_are_escaped(client: httpx.AsyncClient) -> None:
    await answered(client, '<script>alert("x")</script> <img src=x onerror=alert(1)> okapi')
    response = await client.get("/search", params={"q": "okapi"}, headers=HTMX)
    assert "<script>" not in response.text and "<img" not in response.text
    results = html_tree.parse(response.text)
    assert results.find_all("script") == [] and results.find_all("img") == []
    assert '<script>alert("x")</script>' in results.text
    assert [mark.text for mark in results.find_all("mark")][:1] == ["okapi"]


async def test_no_match_and_a_search_too_long_say_so(client: httpx.AsyncClient) -> None:
    await answered(client, "anything")
    none = html_tree.parse((await client.get("/search?q=zzzz", headers=HTMX)).text)
    assert none.find("li").text == "No conversations match."
    response = await client.get("/search", params={"q": "x" * 501})
    assert response.status_code == 200  # the page, the typed search kept, and why
    page = html_tree.parse(response.text)
    assert "too long" in page.find(id="conversation-list").text
    assert page.find("input", type="search").attrs["value"] == "x" * 501
