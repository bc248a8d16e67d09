"""Import (#12): ChatGPT's conversations.json and hxchat's own export, through the real
app on SQLite and PostgreSQL: versions, the path shown, what is noted and what is
skipped, and the round trip of hxchat's export."""

from __future__ import annotations

import json
from typing import Any

import httpx
from fastapi import FastAPI

from tests.chatgpt_export import ChatGptConversation
from tests.helpers import client_for, events, new_conversation, send
from tests.import_samples import (
    by_title,
    chatgpt_export,
    hxchat_document,
    import_json,
    listed,
    shown,
)


async def test_a_chatgpt_export_becomes_conversations_with_versions_and_the_shown_path(
    api: httpx.AsyncClient,
) -> None:
    documents, _ = chatgpt_export()
    response = await import_json(api, documents)
    assert (response.status_code, response.json()) == (201, {"imported": 2})  # one was empty

    items = await listed(api)
    assert sorted(item["title"] for item in items) == ["Alembic migrations", "Image question"]
    path = await shown(api, by_title(items, "Alembic migrations"))
    # The path to current_node: the first question, its second answer, then the
    # unbranched tool run (code, its output, the reply) as one answer.
    assert [m["role"] for m in path] == ["user", "assistant", "user", "assistant"]
    assert path[0]["content"] == "How do I add a column with Alembic?"
    assert path[1]["content"] == "Call op.add_column('t', sa.Column(...))."
    assert path[2]["content"] == "And on SQLite?"
    assert path[3]["content"] == (
        "*(A python tool step from ChatGPT was not imported.)*\n\nSQLite 3.45 needs batch mode."
    )
    assert [len(m["versions"]) for m in path] == [2, 2, 1, 1]  # the edit, the regeneration
    assert [m["model"] for m in path] == [None, "chatgpt:gpt-4o", None, "chatgpt:gpt-4o"]
    everything = " ".join(m["content"] for m in path)
    assert "I write Python." not in everything  # custom instructions stay out

    picture = await shown(api, by_title(items, "Image question"))
    assert [m["content"] for m in picture] == [
        "*(An image or file from ChatGPT was not imported.)*\n\nWhat is in this picture?",
        "A cat on a keyboard.",
    ]
    assert len(picture[1]["versions"]) == 1  # the answer without parts was skipped


async def test_an_untitled_chatgpt_conversation_is_named_after_its_first_question(
    api: httpx.AsyncClient,
) -> None:
    untitled = ChatGptConversation(None)
    question = untitled.say(untitled.root, "user", "What is a **B-tree**, in short?")
    answer = untitled.say(question, "assistant", "A balanced search tree.")
    response = await api.post(  # a form whose file field has another name
        "/api/import",
        files={"upload": ("c.json", json.dumps([untitled.as_json(answer)]), "application/json")},
    )
    assert response.status_code == 201
    assert [c["title"] for c in await listed(api)] == ["What is a B-tree, in short?"]


async def test_a_voice_message_arrives_as_its_transcript(api: httpx.AsyncClient) -> None:
    voice = ChatGptConversation("Voice chat")
    said = voice.say(
        voice.root,
        "user",
        {"content_type": "audio_transcription", "text": "Is it going to rain?", "direction": "in"},
        {"content_type": "audio_asset_pointer", "asset_pointer": "sediment://file_1"},
        content_type="multimodal_text",
    )
    answer = voice.say(said, "assistant", "Take an umbrella.", model="gpt-4o")
    assert (await import_json(api, [voice.as_json(answer)])).status_code == 201
    messages = await shown(api, (await listed(api))[0]["id"])
    assert [m["content"] for m in messages] == ["Is it going to rain?", "Take an umbrella."]


async def test_another_version_of_an_imported_chatgpt_conversation_can_be_shown(
    api: httpx.AsyncClient,
) -> None:
    documents, _ = chatgpt_export()
    assert (await import_json(api, documents)).status_code == 201
    cid = by_title(await listed(api), "Alembic migrations")
    first = (await shown(api, cid))[0]
    other = next(v for v in first["versions"] if v != first["id"])
    selected = await api.post(f"/api/messages/{other}/select")
    assert selected.status_code == 200
    assert [m["content"] for m in selected.json()["messages"]] == [
        "How do I drop a column with Alembic?",
        "Use op.drop_column.",
    ]


async def test_an_imported_conversation_goes_on_where_it_ended(api: httpx.AsyncClient) -> None:
    documents, _ = chatgpt_export()
    assert (await import_json(api, documents)).status_code == 201
    cid = by_title(await listed(api), "Image question")
    before = await shown(api, cid)
    started = await send(api, cid, "And its colour?")
    await events(api, started["events_url"])
    after = await shown(api, cid)
    assert after[:2] == before
    assert after[2]["parent_id"] == before[-1]["id"] and after[2]["id"] > before[-1]["id"]
    assert after[3]["content"] == "And its colour?"  # the echo model answered


async def normalized(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Everything the export says, with ids replaced by their rank (new ids on import)."""
    response = await client.get("/api/export")
    assert response.status_code == 200
    conversations: list[dict[str, Any]] = response.json()["conversations"]
    result = []
    for conversation in sorted(conversations, key=lambda c: c["title"]):
        rank = {m["id"]: index for index, m in enumerate(conversation["messages"])}
        result.append(
            {
                **{k: v for k, v in conversation.items() if k != "id"},
                "current_message_id": rank[conversation["current_message_id"]],
                "path": [rank[i] for i in conversation["path"]],
                "messages": [
                    {
                        **m,
                        "id": rank[m["id"]],
                        "parent_id": None if m["parent_id"] is None else rank[m["parent_id"]],
                        "versions": [rank[v] for v in m["versions"]],
                    }
                    for m in conversation["messages"]
                ],
            }
        )
    return result


async def test_hxchat_export_then_import_gives_the_same_conversations(
    db_app: FastAPI, api: httpx.AsyncClient
) -> None:
    for question in ("first talk", "second talk"):
        cid = await new_conversation(api)
        started = await send(api, cid, question)
        await events(api, started["events_url"])
        edit = await api.post(f"/api/messages/{started['message_id']}/edit", json={"content": "x"})
        await events(api, edit.json()["events_url"])
        retry = await api.post(f"/api/conversations/{cid}/retry")
        await events(api, retry.json()["events_url"])
        answer = (await api.get(f"/api/conversations/{cid}")).json()["messages"][-1]["id"]
        rated = {"rating": "up", "comment": f"good for {question}"}
        assert (await api.put(f"/api/messages/{answer}/feedback", json=rated)).status_code == 204
    chosen = {"title": "Renamed", "pinned": True, "instructions": "Be brief."}
    assert (await api.patch(f"/api/conversations/{cid}", json=chosen)).status_code == 200
    exported = (await api.get("/api/export")).content
    assert b'"rating": "up"' in exported
    renamed = next(c for c in json.loads(exported)["conversations"] if c["title"] == "Renamed")
    assert renamed["title_source"] == "user" and renamed["pinned"] is True
    assert renamed["instructions"] == "Be brief."
    answers = [m for m in renamed["messages"] if m["role"] == "assistant"]
    assert all(m["usage"]["output_tokens"] and m["timing"]["total_ms"] >= 0 for m in answers)

    async with client_for(db_app) as someone_else:
        response = await someone_else.post(
            "/api/import", files={"file": ("hxchat-export.json", exported, "application/json")}
        )
        assert (response.status_code, response.json()) == (201, {"imported": 2})
        assert await normalized(someone_else) == await normalized(api)
        assert [(c["title"], c["pinned"]) for c in await listed(someone_else)] == [
            ("Renamed", True),  # pinned first, as it was
            ("first talk", False),
        ]
        theirs = {c["id"] for c in await listed(someone_else)}
        assert theirs.isdisjoint({c["id"] for c in await listed(api)})  # new ids


async def test_an_export_made_before_settings_and_costs_were_kept_still_imports(
    api: httpx.AsyncClient,
) -> None:
    older = hxchat_document(  # no pinned, instructions, title_source, usage, timing
        [
            {"id": 1, "parent_id": None, "role": "user", "content": "An old question"},
            {"id": 2, "parent_id": 1, "role": "assistant", "content": "An old answer"},
        ]
    )
    assert (await import_json(api, older)).status_code == 201
    (item,) = await listed(api)
    assert (item["title"], item["pinned"]) == ("Made by hand", False)
    conversation = (await api.get(f"/api/conversations/{item['id']}")).json()
    assert conversation["instructions"] == ""
    question, answer = conversation["messages"]
    assert (question["usage"], question["timing"]) == (None, None)
    assert answer["usage"] == {"input_tokens": None, "output_tokens": None}
    assert answer["timing"] is None
    exported = (await api.get(f"/api/conversations/{item['id']}/export?format=json")).json()
    assert exported["title_source"] == "message"


async def test_an_imported_title_the_user_chose_is_not_replaced_by_the_first_message(
    api: httpx.AsyncClient,
) -> None:
    """Who wrote a title comes along: a conversation renamed before its first message
    keeps its name when one is sent; one that was not is named after that message."""
    renamed = {"id": "a", "title": "My own name", "title_source": "user", "messages": []}
    unnamed = {"id": "b", "title": "New chat", "title_source": "message", "messages": []}
    document = {"format": "hxchat", "version": 1, "conversations": [renamed, unnamed]}
    assert (await import_json(api, document)).status_code == 201
    for item in await listed(api):
        await events(api, (await send(api, item["id"], "Hello there"))["events_url"])
    assert sorted(c["title"] for c in await listed(api)) == ["Hello there", "My own name"]


async def test_one_exported_conversation_imports_too(api: httpx.AsyncClient) -> None:
    cid = await new_conversation(api)
    await events(api, (await send(api, cid, "only this one"))["events_url"])
    one = (await api.get(f"/api/conversations/{cid}/export?format=json")).json()
    response = await import_json(api, one)
    assert (response.status_code, response.json()) == (201, {"imported": 1})
    copies = [c for c in await listed(api) if c["title"] == "only this one"]
    assert len(copies) == 2


async def test_a_nul_character_a_javascript_source_and_an_odd_rating_are_not_stored(
    api: httpx.AsyncClient,
) -> None:
    document = hxchat_document(
        [
            {"id": 1, "parent_id": None, "role": "user", "content": "nul\u0000here"},
            {
                "id": 2,
                "parent_id": 1,
                "role": "assistant",
                "content": "answer",
                "sources": [
                    {"title": "ok", "url": "https://example.org/a"},
                    {"title": "bad", "url": "javascript:alert(1)"},
                ],
                "feedback": {"rating": "sideways", "comment": "fine\u0000"},
            },
        ]
    )
    assert (await import_json(api, document)).status_code == 201
    messages = await shown(api, (await listed(api))[0]["id"])
    assert messages[0]["content"] == "nulhere"
    assert messages[1]["sources"] == [{"title": "ok", "url": "https://example.org/a"}]
    assert messages[1]["feedback"] == {"rating": None, "comment": "fine"}


async def test_an_answer_still_written_when_exported_arrives_interrupted(
    api: httpx.AsyncClient,
) -> None:
    document = hxchat_document(
        [
            {"id": 7, "parent_id": None, "role": "user", "content": "Tell me a story"},
            {
                "id": 9,
                "parent_id": 7,
                "role": "assistant",
                "content": "Once upon",
                "status": "streaming",
            },
        ],
        current_message_id=9,
    )
    assert (await import_json(api, document)).status_code == 201
    messages = await shown(api, (await listed(api))[0]["id"])
    assert [(m["content"], m["status"]) for m in messages] == [
        ("Tell me a story", "complete"),
        ("Once upon", "interrupted"),
    ]
    cid = (await listed(api))[0]["id"]
    retried = await api.post(f"/api/conversations/{cid}/retry")
    assert retried.status_code == 202  # it goes on like any interrupted answer
    await events(api, retried.json()["events_url"])
    again = await shown(api, cid)
    assert again[1]["content"] == "Tell me a story" and len(again[1]["versions"]) == 2


async def test_imports_belong_to_the_caller(db_app: FastAPI, api: httpx.AsyncClient) -> None:
    documents, _ = chatgpt_export()
    assert (await import_json(api, documents)).status_code == 201
    async with client_for(db_app) as other:
        assert await listed(other) == []
        mine = (await listed(api))[0]["id"]
        assert (await other.get(f"/api/conversations/{mine}")).status_code == 404
