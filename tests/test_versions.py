"""Versions (#10): edit a question, regenerate an answer, retry, select a version; the
path a conversation shows and what the model sees, through the real app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hxchat.app import create_app
from hxchat.config import Settings
from hxchat.domain import Role, Turn
from tests import html_tree
from tests.helpers import (
    ScriptedModel,
    client_for,
    events,
    new_conversation,
    running_app,
    send,
)


async def chat(client: httpx.AsyncClient, cid: str, *questions: str) -> list[dict[str, Any]]:
    """Ask each question and wait for its answer; the conversation's messages."""
    for question in questions:
        started = await send(client, cid, question)
        await events(client, started["events_url"])
    return await path(client, cid)


async def path(client: httpx.AsyncClient, cid: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/conversations/{cid}")
    assert response.status_code == 200
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


def contents(messages: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in messages]


async def finished(client: httpx.AsyncClient, response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"message_id", "generation_id", "events_url"}
    _, evs = await events(client, body["events_url"])
    assert evs[-1].event == "done"
    return body


async def test_a_conversation_is_a_chain_with_parents_and_versions(
    client: httpx.AsyncClient,
) -> None:
    cid = await new_conversation(client)
    messages = await chat(client, cid, "one", "two")
    assert [m["parent_id"] for m in messages] == [None] + [m["id"] for m in messages[:-1]]
    assert [m["versions"] for m in messages] == [[m["id"]] for m in messages]


async def test_edit_makes_a_new_version_and_select_pages_back(
    client: httpx.AsyncClient,
) -> None:
    cid = await new_conversation(client)
    old = await chat(client, cid, "one", "two")

    edited = await finished(
        client, await client.post(f"/api/messages/{old[2]['id']}/edit", json={"content": "deux"})
    )
    new = await path(client, cid)
    assert contents(new) == ["one", "one", "deux", "deux"]  # the echo model repeats
    assert new[2]["id"] == edited["message_id"]
    assert new[2]["parent_id"] == old[1]["id"]
    assert new[2]["versions"] == [old[2]["id"], edited["message_id"]]
    assert new[3]["versions"] == [new[3]["id"]]

    # Back to the first version: the old branch, with its answer, as it was.
    selected = await client.post(f"/api/messages/{old[2]['id']}/select")
    assert selected.status_code == 200
    assert selected.json() == (await client.get(f"/api/conversations/{cid}")).json()
    assert contents(selected.json()["messages"]) == ["one", "one", "two", "two"]
    assert selected.json()["messages"][2]["versions"] == new[2]["versions"]

    # Selecting the edited one again goes down to its answer (the newest below it).
    again = await client.post(f"/api/messages/{edited['message_id']}/select")
    assert contents(again.json()["messages"]) == ["one", "one", "deux", "deux"]


async def test_regenerate_any_answer_keeps_later_messages_on_the_old_branch(
    client: httpx.AsyncClient,
) -> None:
    cid = await new_conversation(client)
    old = await chat(client, cid, "one", "two")
    body = await finished(client, await client.post(f"/api/messages/{old[1]['id']}/regenerate"))
    new = await path(client, cid)
    assert [m["id"] for m in new] == [old[0]["id"], body["message_id"]]
    assert new[1]["versions"] == [old[1]["id"], body["message_id"]]
    # Selecting the first answer again brings back what followed it.
    selected = await client.post(f"/api/messages/{old[1]['id']}/select")
    assert [m["id"] for m in selected.json()["messages"]] == [m["id"] for m in old]


async def test_retry_keeps_the_old_answer_as_a_version(client: httpx.AsyncClient) -> None:
    cid = await new_conversation(client)
    old = await chat(client, cid, "one")
    retried = await client.post(f"/api/conversations/{cid}/retry")
    assert retried.status_code == 202
    assert set(retried.json()) == {"generation_id", "events_url"}
    await events(client, retried.json()["events_url"])
    new = await path(client, cid)
    assert new[1]["versions"][0] == old[1]["id"] and len(new[1]["versions"]) == 2


async def test_the_model_sees_only_the_selected_path(
    make_settings: Callable[..., Settings],
) -> None:
    model = ScriptedModel(["an answer"])
    app = create_app(make_settings(), model=model)
    async with app.router.lifespan_context(app), client_for(app) as client:
        cid = await new_conversation(client)
        old = await chat(client, cid, "one", "two")
        await finished(
            client,
            await client.post(f"/api/messages/{old[0]['id']}/edit", json={"content": "uno"}),
        )
        assert model.seen[-1] == [Turn(Role.USER, "uno")]
        await client.post(f"/api/messages/{old[1]['id']}/select")
        await chat(client, cid, "three")
        assert model.seen[-1] == [
            Turn(Role.USER, "one"),
            Turn(Role.ASSISTANT, "an answer"),
            Turn(Role.USER, "two"),
            Turn(Role.ASSISTANT, "an answer"),
            Turn(Role.USER, "three"),
        ]
        new = await path(client, cid)
        await finished(client, await client.post(f"/api/messages/{new[3]['id']}/regenerate"))
        assert model.seen[-1] == [
            Turn(Role.USER, "one"),
            Turn(Role.ASSISTANT, "an answer"),
            Turn(Role.USER, "two"),
        ]


async def test_409_while_an_answer_of_the_conversation_runs(
    make_settings: Callable[..., Settings],
) -> None:
    async with running_app(make_settings(echo_delay_ms=200)) as app, client_for(app) as client:
        cid = await new_conversation(client)
        done = await chat(client, cid, "one")
        started = await send(client, cid, "a slow answer of several words")
        for url, body in (
            (f"/api/messages/{done[0]['id']}/edit", {"content": "again"}),
            (f"/api/messages/{done[1]['id']}/regenerate", None),
            (f"/api/messages/{done[1]['id']}/select", None),
        ):
            busy = await client.post(url, json=body)
            assert busy.status_code == 409, url
            assert "still being written" in busy.json()["detail"]
        # The refused requests changed nothing.
        assert [m["id"] for m in (await path(client, cid))[:2]] == [m["id"] for m in done]
        await client.post(f"/api/generations/{started['generation_id']}/cancel")
        await events(client, started["events_url"])
        assert (await client.post(f"/api/messages/{done[1]['id']}/select")).status_code == 200


async def test_another_owners_message_is_404(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    cid = await new_conversation(client)
    mine = await chat(client, cid, "one")
    for message in mine:
        for action, body in (("edit", {"content": "x"}), ("regenerate", None), ("select", None)):
            foreign = await other_client.post(f"/api/messages/{message['id']}/{action}", json=body)
            assert foreign.status_code == 404, action
            assert foreign.json() == {"detail": "There is no such message."}
    assert await path(client, cid) == mine  # untouched


@pytest.mark.parametrize("raw", ["0", "-1", "abc", "1.5", "99999999999", "\uff11"])
async def test_an_id_that_is_no_message_is_404(client: httpx.AsyncClient, raw: str) -> None:
    for action in ("edit", "regenerate", "select"):
        response = await client.post(f"/api/messages/{raw}/{action}", json={"content": "x"})
        assert response.status_code == 404, (raw, action)


async def test_edit_and_regenerate_refuse_the_other_role_and_bad_content(
    client: httpx.AsyncClient, make_settings: Callable[..., Settings]
) -> None:
    cid = await new_conversation(client)
    messages = await chat(client, cid, "one")
    user, answer = messages[0]["id"], messages[1]["id"]
    wrong = await client.post(f"/api/messages/{answer}/edit", json={"content": "x"})
    assert wrong.status_code == 422 and "regenerate" in wrong.json()["detail"]
    wrong = await client.post(f"/api/messages/{user}/regenerate")
    assert wrong.status_code == 422 and "edit" in wrong.json()["detail"]
    empty = await client.post(f"/api/messages/{user}/edit", json={"content": "  "})
    assert empty.status_code == 422
    missing = await client.post(f"/api/messages/{user}/edit", json={})
    assert missing.status_code == 422
    huge = await client.post(f"/api/messages/{user}/edit", json={"content": "x" * 16_001})
    assert huge.status_code == 413
    assert await path(client, cid) == messages  # nothing stored


async def test_versions_count_against_the_rate_limit(
    make_settings: Callable[..., Settings],
) -> None:
    async with running_app(make_settings(rate_limit="3/minute")) as app, client_for(app) as client:
        cid = await new_conversation(client)
        messages = await chat(client, cid, "one")  # 1
        await finished(client, await client.post(f"/api/messages/{messages[1]['id']}/regenerate"))
        assert (await client.post(f"/api/messages/{messages[1]['id']}/select")).status_code == 200
        refused = await client.post(
            f"/api/messages/{messages[0]['id']}/edit", json={"content": "x"}
        )
        assert refused.status_code == 429
        assert "Retry-After" in refused.headers


# -- the page ---------------------------------------------------------------------------

HTMX = {"HX-Request": "true"}


async def test_the_page_edits_and_pages_through_versions_without_javascript(
    client: httpx.AsyncClient,
) -> None:
    cid = await new_conversation(client)
    old = await chat(client, cid, "one")
    page = html_tree.parse((await client.get(f"/c/{cid}")).text)
    user, answer = page.find_all("article")
    edit_form = user.find("form", method="get")
    assert edit_form.find("button").text == "Edit"
    assert edit_form.attrs["action"] == f"/c/{cid}"
    assert answer.find("button", class_="regenerate").text == "Regenerate"
    assert not page.find_all(class_="position")  # one version each: no pager

    # Edit: the page with the message as a form, then a plain post.
    editing = html_tree.parse((await client.get(f"/c/{cid}?edit={old[0]['id']}")).text)
    field = editing.find("textarea", id=f"edit-{old[0]['id']}")
    assert field.text == "one"
    assert editing.find("label", for_=f"edit-{old[0]['id']}").text == "Edited message"
    buttons = [b.text for b in editing.find("article").find_all("button")]
    assert buttons == ["Cancel", "Save"]
    saved = await client.post(f"/c/{cid}/messages/{old[0]['id']}/edit", data={"content": "uno"})
    assert (saved.status_code, saved.headers["location"]) == (303, f"/c/{cid}")
    page = html_tree.parse((await client.get(f"/c/{cid}")).text)
    streaming = page.find("article", data_status="streaming").find(class_="answer")
    await events(client, f"/api/generations/{generation_of(streaming)}/events")
    new = await path(client, cid)

    page = html_tree.parse((await client.get(f"/c/{cid}")).text)
    user = page.find("article", data_role="user")
    assert user.find(class_="content").text == "uno"
    assert user.find(class_="position").text == "2 / 2"
    form, later = user.find(class_="versions").find_all("form")
    assert [form.find("button").text, later.find("button").text] == [
        "Previous version",
        "Next version",
    ]
    assert "disabled" not in form.find("button").attrs
    assert "disabled" in later.find("button").attrs
    assert form.attrs["action"] == f"/c/{cid}/messages/{old[0]['id']}/select"
    back = await client.post(form.attrs["action"], data={"shown": str(new[0]["id"])})
    assert (back.status_code, back.headers["location"]) == (303, f"/c/{cid}")
    page = html_tree.parse((await client.get(f"/c/{cid}")).text)
    assert [a.find(class_="content").text for a in page.find_all("article", data_role="user")] == [
        "one"
    ]
    assert page.find(class_="position").text == "1 / 2"


def generation_of(streaming_answer: html_tree.Node) -> str:
    """The generation a streaming answer's markup connects to."""
    return str(streaming_answer.attrs["sse-connect"]).split("/")[2]


async def test_htmx_swaps_only_the_message_and_what_follows(client: httpx.AsyncClient) -> None:
    cid = await new_conversation(client)
    old = await chat(client, cid, "one", "two")
    form = await client.get(f"/c/{cid}/messages/{old[2]['id']}/edit", headers=HTMX)
    assert form.status_code == 200
    assert html_tree.parse(form.text).find("textarea").text == "two"
    cancel = await client.get(f"/c/{cid}/messages/{old[2]['id']}", headers=HTMX)
    assert html_tree.parse(cancel.text).find(class_="content").text == "two"

    edited = await client.post(
        f"/c/{cid}/messages/{old[2]['id']}/edit", data={"content": "deux"}, headers=HTMX
    )
    assert edited.status_code == 200, edited.text
    fragment = html_tree.parse(edited.text)
    articles = fragment.find_all("article")
    assert [(a.attrs["data-role"], a.attrs["data-status"]) for a in articles] == [
        ("user", "complete"),
        ("assistant", "streaming"),
    ]
    assert articles[0].find(class_="position").text == "2 / 2"
    deleted = fragment.find_all(hx_swap_oob="delete")
    assert [d.attrs["id"] for d in deleted] == [f"msg-{old[3]['id']}"]
    assert fragment.find(id="stop-slot").find("button").text == "Stop"
    gid = generation_of(articles[1].find(class_="answer"))
    await events(client, f"/api/generations/{gid}/events")

    # Regenerate the first answer: it is replaced, everything below it goes.
    now = await path(client, cid)
    again = await client.post(f"/c/{cid}/messages/{now[1]['id']}/regenerate", headers=HTMX)
    fragment = html_tree.parse(again.text)
    assert [a.attrs["data-status"] for a in fragment.find_all("article")] == ["streaming"]
    assert [d.attrs["id"] for d in fragment.find_all(hx_swap_oob="delete")] == [
        f"msg-{m['id']}" for m in now[2:]
    ]
    gid = generation_of(fragment.find(class_="answer"))
    await events(client, f"/api/generations/{gid}/events")

    # Previous version of that answer: the old branch comes back below it.
    shown = (await path(client, cid))[1]
    back = await client.post(
        f"/c/{cid}/messages/{now[1]['id']}/select", data={"shown": str(shown["id"])}, headers=HTMX
    )
    fragment = html_tree.parse(back.text)
    assert [a.attrs["id"] for a in fragment.find_all("article")] == [
        f"msg-{m['id']}" for m in now[1:]
    ]
    assert fragment.find_all("article")[0].find(class_="position").text == "1 / 2"
    # A page that does not show the message acted on is reloaded.
    stale = await client.post(
        f"/c/{cid}/messages/{now[1]['id']}/select", data={"shown": "999999"}, headers=HTMX
    )
    assert stale.headers["HX-Refresh"] == "true"


async def test_page_routes_refuse_other_conversations_and_owners(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    cid, other = await new_conversation(client), await new_conversation(client)
    messages = await chat(client, cid, "one")
    await chat(client, other, "elsewhere")
    user, answer = messages[0]["id"], messages[1]["id"]
    attempts = [
        ("post", f"/c/{other}/messages/{user}/edit", {"content": "x"}),
        ("post", f"/c/{other}/messages/{answer}/regenerate", None),
        ("post", f"/c/{other}/messages/{answer}/select", None),
        ("get", f"/c/{other}/messages/{user}/edit", None),
        ("get", f"/c/{other}/messages/{user}", None),
    ]
    for method, url, data in attempts:
        for who in (client, other_client):
            response = await who.request(method, url, data=data, headers=HTMX)
            assert response.status_code == 404, (url, who is client)
        foreign = await other_client.request(
            method, url.replace(other, cid), data=data, headers=HTMX
        )
        assert foreign.status_code == 404, url
    assert await path(client, cid) == messages


async def test_page_select_while_an_answer_runs_is_409(
    make_settings: Callable[..., Settings],
) -> None:
    async with running_app(make_settings(echo_delay_ms=200)) as app, client_for(app) as client:
        cid = await new_conversation(client)
        done = await chat(client, cid, "one")
        started = await send(client, cid, "a slow answer of several words")
        busy = await client.post(f"/c/{cid}/messages/{done[1]['id']}/select", headers=HTMX)
        assert busy.status_code == 409
        assert busy.headers["HX-Retarget"] == "#composer-error"
        await client.post(f"/api/generations/{started['generation_id']}/cancel")
