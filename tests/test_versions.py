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
