"""Attachments on the page without JavaScript (#11): the composer posts its files
(multipart), the transcript shows them, and a refused file is an error beside the
composer that keeps the typed text and the other files."""

from __future__ import annotations

import httpx

from tests import hostile_files as hostile
from tests.html_tree import Node, parse

HTMX = {"HX-Request": "true"}


def composer(page: Node) -> Node:
    return page.find("form", id="composer")


async def test_the_composer_has_a_multipart_file_input_named_attach_files(
    client: httpx.AsyncClient,
) -> None:
    page = parse((await client.get("/")).text)
    form = composer(page)
    assert form.attrs["enctype"] == "multipart/form-data"
    field = form.find("input", type="file")
    assert field.attrs["name"] == "file" and "multiple" in field.attrs
    label = form.find("label", **{"for": field.attrs["id"]})
    assert label.text.strip() == "Attach files"


async def test_sending_files_without_javascript_shows_a_thumbnail_and_a_link(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/send",
        data={"content": "what is this?", "conversation_id": ""},
        files=[
            ("file", ("chart.png", hostile.png(), "image/png")),
            ("file", ("notes.txt", b"x" * 2048, "text/plain")),
        ],
    )
    assert response.status_code == 303
    page = parse((await client.get(response.headers["location"])).text)
    article = page.find("article", **{"data-role": "user"})
    image = article.find("img")
    assert image.attrs["alt"] == "chart.png" and image.attrs["loading"] == "lazy"
    assert image.attrs["src"] is not None and image.attrs["src"].startswith("/api/files/")
    assert (await client.get(image.attrs["src"])).headers["content-type"] == "image/png"
    link = next(a for a in article.find_all("a") if a.text == "notes.txt")
    assert "2.0 KB" in article.text
    assert link.attrs["href"] is not None and link.attrs["href"].startswith("/api/files/")


async def test_a_message_of_files_only_is_sent(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/send", data={"content": ""}, files=[("file", ("a.md", b"# A", "text/markdown"))]
    )
    assert response.status_code == 303
    page = parse((await client.get(response.headers["location"])).text)
    assert page.find("article", **{"data-role": "user"}).find("a").text == "a.md"


async def test_an_unreadable_file_is_an_error_beside_the_composer_keeping_the_rest(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/send",
        data={"content": "my long careful question"},
        files=[
            ("file", ("good.txt", b"good", "text/plain")),
            ("file", ("archive.txt", hostile.zip_archive(), "text/plain")),
        ],
    )
    assert response.status_code == 415
    page = parse(response.text)
    form = composer(page)
    assert "hxchat cannot read ZIP files." in form.find(id="composer-error").text
    assert "archive.txt" in form.find(id="composer-error").text
    assert form.find("textarea").text == "my long careful question"
    kept = form.find("input", type="checkbox", name="files")
    assert "checked" in kept.attrs and "good.txt" in form.find("li", **{"class": "chip"}).text
    assert page.find_all("article") == []  # nothing was sent

    again = await client.post(
        "/send", data={"content": "my long careful question", "files": kept.attrs["value"]}
    )
    assert again.status_code == 303
    shown = parse((await client.get(again.headers["location"])).text)
    assert shown.find("article", **{"data-role": "user"}).find("a").text == "good.txt"


async def test_eleven_files_at_once_are_refused_and_ten_are_kept(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/send",
        data={"content": "many"},
        files=[("file", (f"{i}.txt", f"file {i}".encode(), "text/plain")) for i in range(11)],
    )
    assert response.status_code == 413
    form = composer(parse(response.text))
    assert "At most 10 files can be attached to one message." in form.find(id="composer-error").text
    assert len(form.find_all("input", type="checkbox", name="files")) == 10


async def test_with_htmx_a_refused_file_answers_on_the_error_line(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/send",
        data={"content": "hi"},
        files=[("file", ("x.svg", hostile.SVG_WITH_SCRIPT, "image/svg+xml"))],
        headers=HTMX,
    )
    assert response.status_code == 415
    assert response.headers["hx-retarget"] == "#composer-error"
    assert "hxchat cannot read SVG files." in response.text
