"""Feedback on answers (#12) through the real app: the API on SQLite and PostgreSQL
(ratings, comments, refusals), `/metrics` by model, and the page's `Good answer` /
`Bad answer` toggles and `Copy` source, with and without htmx."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx

from hxchat.config import Settings
from tests import html_tree
from tests.helpers import app_on, client_for, events, new_conversation, send

HTMX = {"HX-Request": "true"}


async def answered(client: httpx.AsyncClient, content: str = "a question") -> tuple[str, int, int]:
    """A new conversation with one answered question: (its id, question id, answer id)."""
    cid = await new_conversation(client)
    started = await send(client, cid, content)
    await events(client, started["events_url"])
    messages = (await client.get(f"/api/conversations/{cid}")).json()["messages"]
    return cid, messages[0]["id"], messages[1]["id"]


async def feedback_of(client: httpx.AsyncClient, cid: str, message_id: int) -> Any:
    messages = (await client.get(f"/api/conversations/{cid}")).json()["messages"]
    return next(m["feedback"] for m in messages if m["id"] == message_id)


async def test_rate_comment_change_and_clear(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    async with app_on(make_settings, database_url) as app, client_for(app) as client:
        cid, question, answer = await answered(client)
        assert await feedback_of(client, cid, answer) is None
        assert await feedback_of(client, cid, question) is None

        async def put(body: Any) -> httpx.Response:
            return await client.put(f"/api/messages/{answer}/feedback", json=body)

        assert (await put({"rating": "up"})).status_code == 204
        assert await feedback_of(client, cid, answer) == {"rating": "up", "comment": None}
        assert (await put({"rating": "down", "comment": "Wrong year, é ü 漢字"})).status_code == 204
        expected = {"rating": "down", "comment": "Wrong year, é ü 漢字"}
        assert await feedback_of(client, cid, answer) == expected
        assert (await put({"rating": "up"})).status_code == 204  # no comment named: kept
        assert await feedback_of(client, cid, answer) == {**expected, "rating": "up"}
        assert (await put({"rating": None})).status_code == 204  # a comment alone stays
        assert await feedback_of(client, cid, answer) == {**expected, "rating": None}
        assert (await put({"rating": None, "comment": ""})).status_code == 204
        assert await feedback_of(client, cid, answer) is None


async def test_refusals_say_why_and_change_nothing(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    async with (
        app_on(make_settings, database_url, echo_delay_ms=40) as app,
        client_for(app) as client,
        client_for(app) as other,
    ):
        cid, question, answer = await answered(client)
        assert (
            await client.put(f"/api/messages/{answer}/feedback", json={"rating": "down"})
        ).status_code == 204

        async def put(who: httpx.AsyncClient, target: object, body: Any) -> httpx.Response:
            return await who.put(f"/api/messages/{target}/feedback", json=body)

        for who, target, body, status in (
            (other, answer, {"rating": "up"}, 404),  # another owner's answer
            (client, 2**31 - 1, {"rating": "up"}, 404),
            (client, "abc", {"rating": "up"}, 404),
            (client, -1, {"rating": "up"}, 404),
            (client, question, {"rating": "up"}, 422),  # a question is no answer
            (client, answer, {"rating": "UP"}, 422),
            (client, answer, {"rating": "meh"}, 422),
            (client, answer, {"rating": 1}, 422),
            (client, answer, {"rating": ["up"]}, 422),
            (client, answer, {}, 422),  # "rating" is required (null says none)
            (client, answer, {"rating": "up", "comment": 5}, 422),
            (client, answer, {"rating": "up", "comment": "x" * 2_001}, 413),
        ):
            response = await put(who, target, body)
            assert response.status_code == status, (target, body, response.text)
            detail = response.json()["detail"]
            assert isinstance(detail, str) and detail.endswith("."), detail
        assert (await put(client, answer, "not json")).status_code == 422
        assert await feedback_of(client, cid, answer) == {"rating": "down", "comment": None}
        assert (
            await put(client, answer, {"rating": "up", "comment": "y" * 2_000})
        ).status_code == 204

        started = await send(client, cid, " ".join(f"w{i}" for i in range(80)))
        running = (await client.get(f"/api/conversations/{cid}")).json()["messages"][-1]
        busy = await put(client, running["id"], {"rating": "up"})
        assert busy.status_code == 409 and "still being written" in busy.json()["detail"]
        await events(client, started["events_url"])
        assert (await put(client, running["id"], {"rating": "up"})).status_code == 204


def ratings(text: str) -> dict[tuple[str, str], float]:
    found = re.findall(
        r'^hxchat_answer_ratings\{model="([^"]*)",rating="(\w+)"\} (\S+)$', text, re.M
    )
    return {(model, rating): float(value) for model, rating, value in found}


async def test_metrics_count_ratings_by_model_and_forget_deleted_answers(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    assert ratings((await client.get("/metrics")).text) == {}
    rated = []
    for who, rating in ((client, "up"), (client, "up"), (other_client, "down")):
        cid, _, answer = await answered(who)
        put = await who.put(f"/api/messages/{answer}/feedback", json={"rating": rating})
        assert put.status_code == 204
        rated.append((who, cid))
    comment_only = await answered(client)
    await client.put(
        f"/api/messages/{comment_only[2]}/feedback", json={"rating": None, "comment": "hm"}
    )
    assert ratings((await client.get("/metrics")).text) == {
        ("echo", "up"): 2.0,
        ("echo", "down"): 1.0,
    }
    who, cid = rated[-1]
    assert (await who.delete(f"/api/conversations/{cid}")).status_code == 204
    assert ratings((await client.get("/metrics")).text) == {("echo", "up"): 2.0}


# -- the page ---------------------------------------------------------------------------


def toggles(node: html_tree.Node) -> dict[str, str | None]:
    """Each rating button's accessible name and its aria-pressed."""
    found = {}
    for button in node.find_all("button", class_=None):
        if "rate" in (button.attrs.get("class") or "").split():
            name = button.find("span", class_="visually-hidden").text
            found[name] = button.attrs.get("aria-pressed")
    return found


async def test_good_and_bad_answer_as_plain_forms(client: httpx.AsyncClient) -> None:
    cid, question, answer = await answered(client)
    page = html_tree.parse((await client.get(f"/c/{cid}")).text)
    article = page.find("article", id=f"msg-{answer}")
    assert toggles(article) == {"Good answer": "false", "Bad answer": "false"}
    assert not toggles(page.find("article", id=f"msg-{question}"))

    form = article.find("form", class_="feedback")
    pressed = await client.post(form.attrs["action"] or "", data={"rating": "up"})
    assert pressed.status_code == 303
    assert pressed.headers["location"] == f"/c/{cid}#msg-{answer}"
    page = html_tree.parse((await client.get(f"/c/{cid}")).text)
    article = page.find("article", id=f"msg-{answer}")
    assert toggles(article) == {"Good answer": "true", "Bad answer": "false"}
    # The pressed button posts an empty rating: pressing it again turns it off.
    good = next(b for b in article.find_all("button") if "up" in (b.attrs.get("class") or ""))
    assert good.attrs["value"] == ""
    await client.post(f"/c/{cid}/messages/{answer}/feedback", data={"rating": "down"})
    assert await feedback_of(client, cid, answer) == {"rating": "down", "comment": None}
    await client.post(f"/c/{cid}/messages/{answer}/feedback", data={"rating": ""})
    assert await feedback_of(client, cid, answer) is None

    refused = await client.post(f"/c/{cid}/messages/{answer}/feedback", data={"rating": "x"})
    assert refused.status_code == 422
    other_cid, _, _ = await answered(client)
    wrong = await client.post(f"/c/{other_cid}/messages/{answer}/feedback", data={"rating": "up"})
    assert wrong.status_code == 404  # the answer is not of that conversation


async def test_with_htmx_only_the_buttons_are_swapped(client: httpx.AsyncClient) -> None:
    cid, _, answer = await answered(client)
    url = f"/c/{cid}/messages/{answer}/feedback"
    response = await client.post(url, data={"rating": "down"}, headers=HTMX)
    assert response.status_code == 200
    fragment = html_tree.parse(response.text)
    (form,) = [n for n in fragment.children if isinstance(n, html_tree.Node)]
    assert form.tag == "form" and form.attrs["id"] == f"feedback-{answer}"
    assert toggles(form) == {"Good answer": "false", "Bad answer": "true"}
    again = await client.post(url, data={"rating": ""}, headers=HTMX)
    assert toggles(html_tree.parse(again.text)) == {"Good answer": "false", "Bad answer": "false"}


async def test_copy_holds_the_answers_markdown_escaped(client: httpx.AsyncClient) -> None:
    markdown = "Some **bold** & <b>raw</b>\n\n```py\nx = '</template>'\n```"
    cid, _, answer = await answered(client, markdown)
    response = await client.get(f"/c/{cid}")
    page = html_tree.parse(response.text)
    article = page.find("article", id=f"msg-{answer}")
    copy = article.find("button", class_="copy-answer")
    assert copy.text == "Copy" and "hidden" in copy.attrs  # it needs JavaScript
    source = article.find("template", id=copy.attrs["data-source"])
    assert source.text == markdown  # the echo model said it back
    assert "&lt;/template&gt;" in response.text and "<b>raw</b>" not in response.text
