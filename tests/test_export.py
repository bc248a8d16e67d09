"""Export (#12): one conversation as Markdown or JSON, everything as one streamed JSON
download, through the real app on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from hxchat.library import export
from tests.helpers import client_for, events, new_conversation, send


async def talk(client: httpx.AsyncClient, *questions: str) -> str:
    """A conversation with these questions answered by the echo model; its id."""
    cid = await new_conversation(client)
    for question in questions:
        await events(client, (await send(client, cid, question))["events_url"])
    return cid


SOURCED = {
    "format": "hxchat",
    "version": 1,
    "title": "Where SQLite came from",
    "messages": [
        {"id": 1, "parent_id": None, "role": "user", "content": "Who wrote SQLite?"},
        {
            "id": 2,
            "parent_id": 1,
            "role": "assistant",
            "content": "D. Richard Hipp, in 2000.",
            "model": "openai:gpt-4o-mini",
            "usage": {"input_tokens": 1208, "output_tokens": 1312},
            "timing": {"first_text_ms": 380, "total_ms": 4240},
            "sources": [{"title": "SQLite [history]", "url": "https://sqlite.org/history.html"}],
        },
        {"id": 3, "parent_id": 2, "role": "user", "content": "And why?"},
        {
            "id": 4,
            "parent_id": 3,
            "role": "assistant",
            "content": "For a warship's",
            "status": "stopped",
            "model": "openai:gpt-4o-mini",
        },
    ],
}


async def test_markdown_has_the_title_then_each_message_with_role_model_cost_and_sources(
    api: httpx.AsyncClient,
) -> None:
    assert (await api.post("/api/import", json=SOURCED)).status_code == 201
    cid = (await api.get("/api/conversations")).json()[0]["id"]
    response = await api.get(f"/api/conversations/{cid}/export?format=md")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    assert response.headers["content-disposition"].startswith(
        'attachment; filename="Where-SQLite-came-from.md"'
    )
    assert response.text == (
        "# Where SQLite came from\n\n"
        "## User\n\nWho wrote SQLite?\n\n"
        "## Assistant · openai:gpt-4o-mini · 1,312 tokens · 4.2 s\n\nD. Richard Hipp, in 2000.\n\n"
        "Sources:\n\n1. [SQLite \\[history\\]](<https://sqlite.org/history.html>)\n\n"
        "## User\n\nAnd why?\n\n"
        "## Assistant · openai:gpt-4o-mini\n\nFor a warship's\n\n*Stopped before the end.*\n"
    )


async def test_json_has_every_version_of_every_message_and_the_path(
    api: httpx.AsyncClient,
) -> None:
    cid = await talk(api, "one", "two")
    first, answer, *_ = (await api.get(f"/api/conversations/{cid}")).json()["messages"]
    rated = await api.put(f"/api/messages/{answer['id']}/feedback", json={"rating": "down"})
    assert rated.status_code == 204
    edit = await api.post(f"/api/messages/{first['id']}/edit", json={"content": "one, again"})
    await events(api, edit.json()["events_url"])

    response = await api.get(f"/api/conversations/{cid}/export?format=json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"].startswith("attachment; ")
    document = response.json()
    assert (document["format"], document["version"], document["id"]) == ("hxchat", 1, cid)
    assert document["title"] == "one" and document["model"] == "echo"
    messages = {m["id"]: m for m in document["messages"]}
    assert [m["content"] for m in document["messages"]] == [
        "one",
        "one",
        "two",
        "two",
        "one, again",
        "one, again",
    ]
    assert messages[answer["id"]]["feedback"] == {"rating": "down", "comment": None}
    path = [messages[i]["content"] for i in document["path"]]
    assert path == ["one, again", "one, again"]
    assert document["current_message_id"] == document["path"][-1]
    assert messages[document["path"][0]]["versions"] == [first["id"], document["path"][0]]
    shown = (await api.get(f"/api/conversations/{cid}")).json()["messages"]
    for message in shown:  # the same facts as the conversation's own JSON
        exported = messages[message["id"]]
        keys = ("role", "content", "status", "sources", "parent_id", "versions", "model")
        for key in (*keys, "feedback", "usage", "timing"):
            assert exported[key] == message[key], key


async def test_json_has_the_settings_the_user_chose_and_what_each_answer_cost(
    api: httpx.AsyncClient,
) -> None:
    cid = await talk(api, "how much does this cost")
    before = (await api.get(f"/api/conversations/{cid}/export?format=json")).json()
    assert (before["title_source"], before["pinned"], before["instructions"]) == (
        "message",
        False,
        "",
    )
    changes = {"title": "Costs", "pinned": True, "instructions": "  Answer in French.  "}
    assert (await api.patch(f"/api/conversations/{cid}", json=changes)).status_code == 200

    document = (await api.get(f"/api/conversations/{cid}/export?format=json")).json()
    assert document["title"] == "Costs" and document["title_source"] == "user"
    assert document["pinned"] is True and document["instructions"] == "Answer in French."
    question, answer = document["messages"]
    assert question["usage"] is None and question["timing"] is None
    # the echo model counts words: five in (the question), the same five out
    assert answer["usage"] == {"input_tokens": 5, "output_tokens": 5}
    assert answer["timing"]["total_ms"] >= answer["timing"]["first_text_ms"] >= 0
    everything = (await api.get("/api/export")).json()["conversations"]
    assert everything == [{k: v for k, v in document.items() if k not in export.header()}]

    markdown = (await api.get(f"/api/conversations/{cid}/export?format=md")).text
    assert "## Assistant · echo · 5 tokens · " in markdown


async def test_a_title_makes_a_safe_file_name(api: httpx.AsyncClient) -> None:
    cid = await talk(api, '../../etc/passwd "x"; y=z \\ Ünïcode ✓ <b>')
    response = await api.get(f"/api/conversations/{cid}/export?format=md")
    disposition = response.headers["content-disposition"]
    name = re.search(r'filename="([^"]*)"', disposition)
    assert name is not None and re.fullmatch(r"[A-Za-z0-9._-]+\.md", name.group(1)), disposition
    assert "/" not in name.group(1) and not name.group(1).startswith(".")
    assert "filename*=UTF-8''" in disposition and "%E2%9C%93" in disposition  # the ✓


async def test_a_bad_format_is_422_and_another_owners_conversation_404(
    db_app: FastAPI, api: httpx.AsyncClient
) -> None:
    cid = await talk(api, "mine")
    response = await api.get(f"/api/conversations/{cid}/export?format=pdf")
    assert response.status_code == 422
    assert response.json() == {"detail": "The format must be md (Markdown) or json."}
    async with client_for(db_app) as other:
        for fmt in ("md", "json"):
            foreign = await other.get(f"/api/conversations/{cid}/export?format={fmt}")
            assert foreign.status_code == 404
            assert foreign.json() == {"detail": "There is no such conversation."}
        assert (await other.get("/api/export")).json()["conversations"] == []
    assert (await api.get("/api/conversations/nothing/export")).status_code == 404


async def test_export_all_has_every_conversation_once_across_batches(
    db_app: FastAPI, api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "BATCH", 2)  # five conversations: three batches
    made = [await talk(api, f"talk {n}") for n in range(5)]
    async with client_for(db_app) as other:
        await talk(other, "not mine")
    response = await api.get("/api/export")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert re.fullmatch(
        r'attachment; filename="hxchat-export-\d{4}-\d\d-\d\d\.json"; .*',
        response.headers["content-disposition"],
    )
    document: dict[str, Any] = json.loads(response.content)
    assert (document["format"], document["version"]) == ("hxchat", 1)
    assert [c["id"] for c in document["conversations"]] == made  # oldest first, no others
    assert all(len(c["messages"]) == 2 for c in document["conversations"])


async def test_a_batch_holds_few_messages_when_conversations_are_long(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "BATCH_MESSAGES", 3)  # two messages each: one a batch
    made = [await talk(api, f"talk {n}", "and more") for n in range(3)]
    document = (await api.get("/api/export")).json()
    assert [c["id"] for c in document["conversations"]] == made
    assert all(len(c["messages"]) == 4 for c in document["conversations"])


async def test_an_owner_with_no_conversations_exports_an_empty_list(
    api: httpx.AsyncClient,
) -> None:
    document = (await api.get("/api/export")).json()
    assert document["conversations"] == [] and document["format"] == "hxchat"
