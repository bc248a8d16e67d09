"""The browser's pages and fragments: structure a person and a browser test rely on."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from hxchat.config import Settings
from tests import html_tree, sse
from tests.helpers import (
    client_for,
    events,
    eventually,
    new_conversation,
    running_app,
    send,
    shown_body,
)

HTMX = {"HX-Request": "true"}


async def test_home_page_structure_and_policy(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    page = html_tree.parse(response.text)
    assert page.find("title").text == "hxchat"
    form = page.find("form")
    textarea = form.find("textarea", name="content")
    label = page.find("label", for_=textarea.attrs["id"])
    assert label.text == "Message"
    assert [b.text for b in form.find_all("button", type="submit")] == ["Send"]
    assert page.find(role="log")
    assert page.find("nav", aria_label="Conversations").find("a").text == "New chat"
    assert page.find(id="welcome").find_all("button", data_prompt=None)
    for script in page.find_all("script"):
        assert (script.attrs.get("src") or "").startswith("/static/")
        assert script.text.strip() == ""
    for node in page.iter():
        assert not any(k.startswith("on") or k.startswith("hx-on") for k in node.attrs)
        assert "style" not in node.attrs


async def test_send_without_javascript_redirects_to_the_conversation(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/send", data={"content": "plain form post"})
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/c/")
    page = html_tree.parse((await client.get(location)).text)
    assert page.find("title").text == "plain form post"
    users = page.find_all("article", data_role="user")
    assert [u.find(class_="content").text for u in users] == ["plain form post"]
    current = page.find("nav").find("a", aria_current="page")
    assert current.attrs["href"] == location


async def test_send_with_htmx_returns_fragments(client: httpx.AsyncClient) -> None:
    response = await client.post("/send", data={"content": "<b>hi</b> there"}, headers=HTMX)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["vary"].split(", ")  # and Accept-Encoding
    pushed = response.headers["hx-push-url"]
    fragment = html_tree.parse(response.text)
    user, assistant = fragment.find_all("article")[:2]
    assert user.attrs["data-role"] == "user"
    assert "<b>hi</b> there" in user.text  # shown as text, not markup
    assert not user.find_all("b")
    assert assistant.attrs["data-status"] == "streaming"
    stream_url = assistant.find(sse_connect=None).attrs["sse-connect"]
    assert stream_url is not None and stream_url.startswith("/generations/")
    assert fragment.find(id="stop-slot").find("button").text == "Stop"
    assert fragment.find(id="conversation-id").attrs["value"] == pushed.removeprefix("/c/")
    assert fragment.find("title").text == "<b>hi</b> there"
    # the browser stream ends with the finished article
    stream = await client.get(stream_url)
    frames = sse.parse(stream.text)
    assert frames[-1].event == "end"
    final = html_tree.parse(frames[-1].data).find("article")
    assert final.attrs["data-status"] == "complete"
    shown = html_tree.parse(shown_body(frames))  # the end may keep the streamed body
    assert "<b>hi</b> there" in shown.text
    assert not shown.find_all("b")


async def test_refused_message_is_a_readable_fragment(client: httpx.AsyncClient) -> None:
    for data, status in (({"content": "  "}, 422), ({"content": "x" * 16_001}, 413)):
        response = await client.post("/send", data=data, headers=HTMX)
        assert response.status_code == status
        assert response.headers["hx-retarget"] == "#composer-error"
        assert response.text.endswith(".")
        assert "<" not in response.text


async def test_without_javascript_a_refused_message_keeps_its_text_beside_the_error(
    client: httpx.AsyncClient,
) -> None:
    for text, status, error in (
        ("  ", 422, "The message is empty."),
        ("x" * 16_001, 413, "The message has 16,001 characters; the limit is 16,000."),
    ):
        response = await client.post("/send", data={"content": text, "conversation_id": ""})
        assert response.status_code == status
        form = html_tree.parse(response.text).find("form", id="composer")
        assert form.find(id="composer-error").text == error
        assert form.find("textarea", name="content").text == text
    assert (await client.get("/api/conversations")).json() == []


async def test_without_javascript_a_message_while_an_answer_runs_keeps_its_text(
    make_settings: Callable[..., Settings],
) -> None:
    async with running_app(make_settings(echo_delay_ms=200)) as app, client_for(app) as client:
        cid = await new_conversation(client)
        started = await send(client, cid, "a slow answer of several words")
        response = await client.post(
            "/send", data={"content": "my follow-up", "conversation_id": cid}
        )
        await client.post(f"/api/generations/{started['generation_id']}/cancel")
    assert response.status_code == 409
    page = html_tree.parse(response.text)
    form = page.find("form", id="composer")
    assert "still being written" in form.find(id="composer-error").text
    assert form.find("textarea", name="content").text == "my follow-up"
    assert form.find("input", name="conversation_id").attrs["value"] == cid  # still this one
    assert page.find("article", data_role="user").find(class_="content").text == (
        "a slow answer of several words"
    )


async def test_conversation_page_shows_history(client: httpx.AsyncClient) -> None:
    cid = await new_conversation(client)
    started = await send(client, cid, "# Title\n\n| a | b |\n|--:|:-:|\n| 1 | 2 |")
    await events(client, started["events_url"])
    page = html_tree.parse((await client.get(f"/c/{cid}")).text)
    assistant = page.find("article", data_role="assistant")
    assert assistant.attrs["data-status"] == "complete"
    assert assistant.find("h1").text == "Title"
    assert assistant.find("td", class_="align-right").text == "1"
    assert not page.find(id="stop-slot").find_all("button")


async def test_foreign_conversation_page_is_an_html_404(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    cid = await new_conversation(client)
    for c in (other_client, client):
        response = await c.get(f"/c/{cid if c is other_client else 'nope'}")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert html_tree.parse(response.text).find("h1").text == "404"


async def test_history_restore_gets_the_whole_page(client: httpx.AsyncClient) -> None:
    """htmx restoring a page it no longer has cached asks with HX-Request too: it must
    get the whole page a plain load gets, not a fragment, or the page falls apart."""
    cid = await new_conversation(client)
    started = await send(client, cid, "remember me")
    await events(client, started["events_url"])
    restore = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    for path in ("/", f"/c/{cid}"):
        plain = await client.get(path)
        restored = await client.get(path, headers=restore)
        assert restored.status_code == 200
        assert restored.text == plain.text, path
        page = html_tree.parse(restored.text)
        assert page.find("form", id="composer").find("textarea", name="content")
        assert page.find("nav", aria_label="Conversations")
    articles = page.find_all("article")
    assert [a.attrs["data-role"] for a in articles] == ["user", "assistant"]
    assert articles[0].find(class_="content").text == "remember me"


async def test_static_files_and_vendored_htmx(client: httpx.AsyncClient) -> None:
    for path in (
        "/static/app.js",
        "/static/app.css",
        "/static/pygments.css",
        "/static/favicon.svg",
        "/static/vendor/htmx-2.0.11.min.js",
        "/static/vendor/htmx-ext-sse-2.2.4.js",
    ):
        assert (await client.get(path)).status_code == 200, path


async def test_without_javascript_a_running_answer_reloads_the_page_until_it_ends(
    make_settings: Callable[..., Settings],
) -> None:
    """Nothing streams in without JavaScript: the page of a running answer refreshes
    itself (a <noscript> meta refresh, inert where scripts run); once the answer has
    ended the page stays still."""
    async with running_app(make_settings(echo_delay_ms=100)) as app, client_for(app) as client:
        sent = await client.post("/send", data={"content": "a slow answer of some words"})
        assert sent.status_code == 303
        location = sent.headers["location"]
        page = html_tree.parse((await client.get(location)).text)
        assert page.find("article", data_role="assistant").attrs["data-status"] == "streaming"
        (refresh,) = page.find("head").find("noscript").find_all("meta")
        assert refresh.attrs["http-equiv"] == "refresh"
        assert refresh.attrs["content"] == "2"
        await eventually(lambda: _ended(client, location))
        assert not html_tree.parse((await client.get("/")).text).find_all("noscript")


async def test_without_javascript_a_running_answer_shows_its_text_so_far(
    make_settings: Callable[..., Settings],
) -> None:
    """Each reload of a running answer's page shows the text stored so far (checkpointed
    about once a second), rendered, inside <noscript>: readers without scripts see it
    grow; where scripts run the stream shows it instead."""
    words = " ".join(f"word{n}" for n in range(200))
    async with running_app(make_settings(echo_delay_ms=20)) as app, client_for(app) as client:
        sent = await client.post("/send", data={"content": words})
        location = sent.headers["location"]
        cid = location.rsplit("/", 1)[-1]

        async def some_text_stored() -> str:
            conversation = (await client.get(f"/api/conversations/{cid}")).json()
            answer = conversation["messages"][-1]
            assert answer["status"] == "streaming" and answer["content"]
            return str(answer["content"])

        stored = await eventually(some_text_stored)
        page = html_tree.parse((await client.get(location)).text)
        article = page.find("article", data_role="assistant")
        assert article.attrs["data-status"] == "streaming"
        shown = article.find("noscript").text
        assert shown.startswith(stored.split()[0]) and len(shown.split()) >= len(stored.split())


async def _ended(client: httpx.AsyncClient, location: str) -> None:
    page = html_tree.parse((await client.get(location)).text)
    assert page.find("article", data_role="assistant").attrs["data-status"] == "complete"
    assert page.find_all("noscript") == []


async def test_stop_and_retry_work_without_javascript(
    make_settings: Callable[..., Settings],
) -> None:
    """Stop is a submit button of the page's own form (it sits in the composer, whose
    form it leaves alone), and Retry a form: both post and lead back to the page."""
    async with running_app(make_settings(echo_delay_ms=200)) as app, client_for(app) as client:
        sent = await client.post("/send", data={"content": "a slow answer of several words"})
        location = sent.headers["location"]
        page = html_tree.parse((await client.get(location)).text)
        stop = page.find("button", class_="stop")
        assert stop.text == "Stop" and stop.attrs["type"] == "submit"
        form = page.find("form", id=str(stop.attrs["form"]))
        assert form.attrs["method"] == "post"
        assert form not in page.find("form", id="composer").iter()
        stopped = await client.post(str(form.attrs["action"]))
        assert (stopped.status_code, stopped.headers["location"]) == (303, location)

        async def ended() -> html_tree.Node:
            shown = html_tree.parse((await client.get(location)).text)
            assert shown.find("article", data_role="assistant").attrs["data-status"] == "stopped"
            return shown

        page = await eventually(ended)
        assert page.find_all("button", class_="stop") == []
        (retry,) = [f for f in page.find_all("form") if f.find_all("button", class_="retry")]
        assert retry.find("button", class_="retry").text.strip() == "Retry"
        again = await client.post(str(retry.attrs["action"]))
        assert (again.status_code, again.headers["location"]) == (303, location)
        cid = location.rsplit("/", 1)[-1]
        messages = (await client.get(f"/api/conversations/{cid}")).json()["messages"]
        assert len(messages[-1]["versions"]) == 2  # a new answer beside the stopped one


async def test_a_refused_message_without_javascript_keeps_the_typed_text(
    make_settings: Callable[..., Settings],
) -> None:
    """The page again, with the sentence beside the composer and the text in it: for a
    message sent while an answer runs (and no refresh then, which would lose it), too
    long, empty, or naming a model that is not offered."""
    async with running_app(make_settings(echo_delay_ms=200)) as app, client_for(app) as client:
        sent = await client.post("/send", data={"content": "a slow answer of several words"})
        cid = sent.headers["location"].rsplit("/", 1)[-1]
        for data, status, sentence in (
            ({"content": "my next question"}, 409, "still being written"),
            ({"content": "x" * 16_001}, 413, "16,000"),
            ({"content": "  "}, 422, ""),
            ({"content": "which model?", "model": "nope"}, 422, "Unknown model: nope."),
        ):
            refused = await client.post("/send", data={**data, "conversation_id": cid})
            assert refused.status_code == status, data
            page = html_tree.parse(refused.text)
            composer = page.find("form", id="composer")
            assert composer.find("textarea", name="content").text == data["content"]
            assert sentence in composer.find(id="composer-error").text
            assert composer.find(id="composer-error").text.strip()
            assert composer.find("input", name="conversation_id").attrs["value"] == cid
            assert page.find_all("noscript") == []  # a refresh would lose the text


async def test_a_refused_message_keeps_the_model_chosen(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # never asked here
    settings = make_settings(models="openai:other", search="none")
    async with running_app(settings) as app, client_for(app) as client:
        refused = await client.post("/send", data={"content": "  ", "model": "openai:other"})
        assert refused.status_code == 422
        select = html_tree.parse(refused.text).find("select", name="model")
        chosen = [o.attrs["value"] for o in select.find_all("option") if "selected" in o.attrs]
        assert chosen == ["openai:other"]  # not the default, echo
