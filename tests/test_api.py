"""The JSON API as docs/api.md describes it, through the real app on a real SQLite file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hxchat.config import Settings
from tests.helpers import client_for, events, new_conversation, running_app, send


async def test_conversation_round_trip(client: httpx.AsyncClient) -> None:
    cid = await new_conversation(client)
    started = await send(client, cid, "Hello **world**,\n\n- one\n- two")
    assert started["events_url"] == f"/api/generations/{started['generation_id']}/events"
    status, evs = await events(client, started["events_url"])
    assert status == 200
    text = "".join(e.json()["text"] for e in evs if e.event == "delta")
    assert text == "Hello **world**,\n\n- one\n- two"
    assert evs[-1].event == "done"
    assert evs[-1].json()["status"] == "complete"
    assert all(e.id for e in evs)

    conversation = (await client.get(f"/api/conversations/{cid}")).json()
    assert conversation["title"] == "Hello world, one two"  # Markdown marks left out
    roles = [(m["role"], m["status"]) for m in conversation["messages"]]
    assert roles == [("user", "complete"), ("assistant", "complete")]
    assert conversation["messages"][0]["id"] == started["message_id"]
    assert conversation["messages"][1]["id"] == evs[-1].json()["message_id"]
    assert conversation["messages"][1]["content"] == text
    assert conversation["messages"][1]["sources"] == []

    listed = (await client.get("/api/conversations")).json()
    assert [c["id"] for c in listed] == [cid]
    assert set(listed[0]) == {"id", "title", "updated_at", "pinned"}  # pinned: #12


async def test_list_is_last_activity_first(client: httpx.AsyncClient) -> None:
    first, second = await new_conversation(client), await new_conversation(client)
    started = await send(client, first, "bump")
    await events(client, started["events_url"])
    listed = [c["id"] for c in (await client.get("/api/conversations")).json()]
    assert listed == [first, second]


async def test_resume_with_last_event_id_gets_each_later_event_once(
    client: httpx.AsyncClient,
) -> None:
    cid = await new_conversation(client)
    started = await send(client, cid, "one two three four five six")
    _, full = await events(client, started["events_url"])
    for cut in range(len(full) - 1):
        _, rest = await events(client, started["events_url"], last=full[cut].id)
        assert [(e.id, e.data) for e in rest] == [(e.id, e.data) for e in full[cut + 1 :]]
    status, after_end = await events(client, started["events_url"], last=full[-1].id)
    assert status == 204
    assert after_end == []


async def test_409_while_a_generation_runs(make_settings: Callable[..., Settings]) -> None:
    async with running_app(make_settings(echo_delay_ms=200)) as app, client_for(app) as client:
        cid = await new_conversation(client)
        started = await send(client, cid, "a slow answer of several words")
        busy = await client.post(f"/api/conversations/{cid}/messages", json={"content": "again"})
        assert busy.status_code == 409
        assert isinstance(busy.json()["detail"], str)
        retry = await client.post(f"/api/conversations/{cid}/retry")
        assert retry.status_code == 409
        cancel = await client.post(f"/api/generations/{started['generation_id']}/cancel")
        assert cancel.status_code == 202
        _, evs = await events(client, started["events_url"])
        assert evs[-1].event == "done"
        assert evs[-1].json()["status"] == "stopped"
        again = await client.post(f"/api/generations/{started['generation_id']}/cancel")
        assert again.status_code == 202
        message = (await client.get(f"/api/conversations/{cid}")).json()["messages"][-1]
        assert message["status"] == "stopped"
        kept = "".join(e.json()["text"] for e in evs if e.event == "delta")
        assert message["content"] == kept


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"content": ""}, 422),
        ({"content": "   \n "}, 422),
        ({}, 422),
        ({"content": 5}, 422),
        ({"content": "x" * 16_001}, 413),
    ],
)
async def test_refused_messages(client: httpx.AsyncClient, body: Any, status: int) -> None:
    cid = await new_conversation(client)
    response = await client.post(f"/api/conversations/{cid}/messages", json=body)
    assert response.status_code == status
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail.endswith(".")
    assert (await client.get(f"/api/conversations/{cid}")).json()["messages"] == []


async def test_malformed_json_is_one_sentence(client: httpx.AsyncClient) -> None:
    cid = await new_conversation(client)
    response = await client.post(
        f"/api/conversations/{cid}/messages",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str)


async def test_huge_body_is_refused_before_it_is_read(client: httpx.AsyncClient) -> None:
    cid = await new_conversation(client)
    response = await client.post(
        f"/api/conversations/{cid}/messages", json={"content": "x" * 2_000_000}
    )
    assert response.status_code == 413


async def test_foreign_and_unknown_ids_are_404(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    cid = await new_conversation(client)
    started = await send(client, cid, "mine")
    gid = started["generation_id"]
    for c, conversation, generation in (
        (other_client, cid, gid),
        (client, "0" * 32, "f" * 32),
    ):
        assert (await c.get(f"/api/conversations/{conversation}")).status_code == 404
        sent = await c.post(f"/api/conversations/{conversation}/messages", json={"content": "x"})
        assert sent.status_code == 404
        assert (await c.post(f"/api/conversations/{conversation}/retry")).status_code == 404
        assert (await c.delete(f"/api/conversations/{conversation}")).status_code == 404
        assert (await c.get(f"/api/generations/{generation}/events")).status_code == 404
        cancel = await c.post(f"/api/generations/{generation}/cancel")
        assert cancel.status_code == 404
        assert isinstance(cancel.json()["detail"], str)
    assert (await other_client.get("/api/conversations")).json() == []


async def test_retry_replaces_the_last_answer(client: httpx.AsyncClient) -> None:
    cid = await new_conversation(client)
    assert (await client.post(f"/api/conversations/{cid}/retry")).status_code == 422
    started = await send(client, cid, "say it again")
    await events(client, started["events_url"])
    retried = await client.post(f"/api/conversations/{cid}/retry")
    assert retried.status_code == 202
    body = retried.json()
    _, evs = await events(client, body["events_url"])
    assert evs[-1].event == "done"
    messages = (await client.get(f"/api/conversations/{cid}")).json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[-1]["content"] == "say it again"


async def test_delete(client: httpx.AsyncClient) -> None:
    cid = await new_conversation(client)
    started = await send(client, cid, "gone soon")
    await events(client, started["events_url"])
    assert (await client.delete(f"/api/conversations/{cid}")).status_code == 204
    assert (await client.get(f"/api/conversations/{cid}")).status_code == 404
    assert (await client.get(started["events_url"])).status_code == 404


async def test_a_program_without_cookie_gets_one(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/conversations")
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    again = await client.get("/api/conversations")
    assert "set-cookie" not in again.headers


async def test_forged_cookie_is_a_new_session(client: httpx.AsyncClient) -> None:
    cid = await new_conversation(client)
    forged = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    async with forged:
        forged.cookies.set("hxchat_session", "someone-else.forgedsignature")
        assert (await forged.get(f"/api/conversations/{cid}")).status_code == 404


async def test_a_known_cookie_vouches_only_for_itself(client: httpx.AsyncClient) -> None:
    """The server remembers the owner of a cookie it has checked (every answer sends
    it twice); a cookie that differs from it in one character is checked anew."""
    cid = await new_conversation(client)
    value = client.cookies["hxchat_session"]
    assert (await client.get(f"/api/conversations/{cid}")).status_code == 200  # remembered
    last = value[-1]
    tampered = value[:-1] + ("A" if last != "A" else "B")
    other = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    async with other:
        other.cookies.set("hxchat_session", tampered)
        refused = await other.get(f"/api/conversations/{cid}")
        assert refused.status_code == 404
        assert "set-cookie" in refused.headers  # a new session, not the owner's
        other.cookies.clear()
        other.cookies.set("hxchat_session", value)
        assert (await other.get(f"/api/conversations/{cid}")).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ],
)
async def test_cross_site_posts_are_refused(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post("/api/conversations", headers=headers)
    assert response.status_code == 403
    assert isinstance(response.json()["detail"], str)
    same = await client.post(
        "/api/conversations",
        headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
    )
    assert same.status_code == 201


async def test_healthz_and_metrics(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    cid = await new_conversation(client)
    started = await send(client, cid, "count me")
    await events(client, started["events_url"])
    metrics = (await client.get("/metrics")).text
    assert 'hxchat_generations_total{status="complete"} 1.0' in metrics
    assert "hxchat_time_to_first_token_seconds_count 1.0" in metrics
    assert "hxchat_active_streams" in metrics


async def test_api_404_is_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"detail": "There is no such page."}
