"""Import (#12): ChatGPT's conversations.json and hxchat's own export, through the real
app on SQLite and PostgreSQL; every hostile file is refused with a readable sentence
and leaves nothing behind."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from hxchat.config import Settings
from hxchat.library import imported
from hxchat.store.migrate import upgrade
from tests.chatgpt_export import IMAGE_PART, ChatGptConversation
from tests.helpers import client_for, events, new_conversation, running_app, send


@pytest.fixture
async def db_app(
    database_url: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[FastAPI]:
    await upgrade(database_url)
    async with running_app(make_settings(database_url=database_url)) as app:
        yield app


@pytest.fixture
async def api(db_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(db_app) as client:
        yield client


async def listed(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/api/conversations")
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()
    return items


async def shown(client: httpx.AsyncClient, cid: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/conversations/{cid}")
    assert response.status_code == 200
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


async def import_json(client: httpx.AsyncClient, document: Any) -> httpx.Response:
    return await client.post(
        "/api/import",
        content=json.dumps(document).encode(),
        headers={"Content-Type": "application/json"},
    )


def chatgpt_export() -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Three conversations as ChatGPT exports them, and the texts the tests look for."""
    alembic = ChatGptConversation("Alembic migrations")
    system = alembic.say(alembic.root, "system", "", hidden=True)
    context = alembic.say(
        system,
        "user",
        content={"content_type": "user_editable_context", "user_profile": "I write Python."},
        hidden=True,
    )
    ask = alembic.say(context, "user", "How do I add a column with Alembic?")
    alembic.say(ask, "assistant", "Use op.add_column in an upgrade.", model="gpt-4")
    again = alembic.say(
        ask, "assistant", "Call op.add_column('t', sa.Column(...)).", model="gpt-4o"
    )
    then = alembic.say(again, "user", "And on SQLite?")
    code = alembic.say(
        then,
        "assistant",
        content={"content_type": "code", "language": "python", "text": "import sqlite3"},
        recipient="python",
        model="gpt-4o",
    )
    output = alembic.say(
        code,
        "tool",
        content={"content_type": "execution_output", "text": "3.45.0"},
        name="python",
    )
    answer = alembic.say(output, "assistant", "SQLite 3.45 needs batch mode.", model="gpt-4o")
    edited = alembic.say(context, "user", "How do I drop a column with Alembic?")
    dropped = alembic.say(edited, "assistant", "Use op.drop_column.", model="gpt-4o")
    alembic.node(dropped, None)  # a node whose message is null, at the end of a branch

    picture = ChatGptConversation("Image question")
    question = picture.say(picture.root, "user", IMAGE_PART, "What is in this picture?")
    cat = picture.say(question, "assistant", "A cat on a keyboard.", model="gpt-4o")
    picture.say(question, "assistant", content={"content_type": "text"})  # no parts at all

    empty = ChatGptConversation(None)
    hidden = empty.say(empty.root, "system", "", hidden=True)
    documents = [alembic.as_json(answer), picture.as_json(cat), empty.as_json(hidden)]
    return documents, {"answer": answer, "cat": cat}


def by_title(items: list[dict[str, Any]], title: str) -> str:
    return next(str(item["id"]) for item in items if item["title"] == title)


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
    exported = (await api.get("/api/export")).content
    assert b'"rating": "up"' in exported

    async with client_for(db_app) as someone_else:
        response = await someone_else.post(
            "/api/import", files={"file": ("hxchat-export.json", exported, "application/json")}
        )
        assert (response.status_code, response.json()) == (201, {"imported": 2})
        assert await normalized(someone_else) == await normalized(api)
        theirs = {c["id"] for c in await listed(someone_else)}
        assert theirs.isdisjoint({c["id"] for c in await listed(api)})  # new ids


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


def hxchat_document(messages: list[dict[str, Any]], **conversation: Any) -> dict[str, Any]:
    one = {"id": "c1", "title": "Made by hand", "messages": messages, **conversation}
    return {"format": "hxchat", "version": 1, "conversations": [one]}


# -- hostile files: a readable 4xx, and nothing imported -------------------------------


async def refused(client: httpx.AsyncClient, response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail.endswith("."), detail
    assert "Traceback" not in detail and "Error" not in detail
    assert await listed(client) == []  # nothing half-imported
    return detail


async def test_a_truncated_file_is_refused_as_cut_off(api: httpx.AsyncClient) -> None:
    documents, _ = chatgpt_export()
    whole = json.dumps(documents).encode()
    for cut in (len(whole) // 2, len(whole) - 1):
        response = await api.post("/api/import", content=whole[:cut])
        assert "cut off" in await refused(api, response, 422)


async def test_a_50_mb_file_is_refused_before_it_is_read_whole(api: httpx.AsyncClient) -> None:
    chunk = b" " * (1024 * 1024)
    sent = 0

    async def fifty_megabytes() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        nonlocal sent
        yield b"["
        for _ in range(50):
            sent += len(chunk)
            yield chunk
        yield b"]"

    response = await api.post("/api/import", content=fifty_megabytes())
    detail = await refused(api, response, 413)
    assert detail == "The file is too large to import: the limit is 32 MB."
    assert sent < 40 * 1024 * 1024  # the server stopped reading after the limit

    with_length = await api.post(
        "/api/import", files={"file": ("big.json", b"[" + chunk * 50 + b"]", "application/json")}
    )
    assert "too large" in await refused(api, with_length, 413)


async def test_100000_nested_levels_are_refused_readably(api: httpx.AsyncClient) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    detail = await refused(api, await api.post("/api/import", content=deep), 422)
    assert "64 levels" in detail
    objects = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    assert "64 levels" in await refused(api, await api.post("/api/import", content=objects), 422)


async def test_an_open_string_before_many_escaped_quotes_is_refused_at_once(
    api: httpx.AsyncClient,
) -> None:
    """A quote left open before a million escaped quotes: the depth check once tried
    every escaped quote again to the end of the file (hours for a few megabytes)."""
    body = b'[{"mapping": {"a": "' + b'\\"' * 1_000_000
    assert "cut off" in await refused(api, await api.post("/api/import", content=body), 422)


async def test_duplicated_ids_are_refused(api: httpx.AsyncClient) -> None:
    documents, _ = chatgpt_export()
    text = json.dumps(documents)
    node = next(iter(documents[1]["mapping"]))  # a node id, named twice in its mapping
    twice = text.replace(f'"{node}": {{', f'"{node}": {{"id": "{node}"}}, "{node}": {{', 1)
    detail = await refused(api, await api.post("/api/import", content=twice.encode()), 422)
    assert node[:20] in detail and "twice" in detail

    same_message = hxchat_document(
        [
            {"id": 1, "parent_id": None, "role": "user", "content": "a"},
            {"id": 1, "parent_id": None, "role": "user", "content": "b"},
        ]
    )
    detail = await refused(api, await import_json(api, same_message), 422)
    assert detail == "Conversation 1: the message id 1 appears twice."

    same_conversation = [*documents, documents[0]]  # the first one again, at the end
    detail = await refused(api, await import_json(api, same_conversation), 422)
    assert "Conversation 4 has the id" in detail


async def test_a_foreign_format_is_refused(api: httpx.AsyncClient) -> None:
    for body in (
        b'{"messages": [{"role": "user", "content": "hi"}]}',
        b"[1, 2, 3]",
        b"title,content\nhello,world\n",
        b"",
        "\u00e9t\u00e9".encode("latin-1"),
    ):
        await refused(api, await api.post("/api/import", content=body), 422)
    detail = await refused(api, await api.post("/api/import", content=b'{"a": 1}'), 422)
    assert "neither an hxchat export nor ChatGPT's conversations.json" in detail


async def test_one_broken_conversation_refuses_the_whole_file(api: httpx.AsyncClient) -> None:
    documents, _ = chatgpt_export()
    broken = ChatGptConversation("Broken")
    orphan = broken.say(broken.root, "user", "Who is my parent?")
    broken.mapping[orphan]["parent"] = "a-node-that-is-not-there"
    detail = await refused(api, await import_json(api, [*documents, broken.as_json(orphan)]), 422)
    assert "Conversation 4" in detail and "not there" in detail

    circle = hxchat_document(
        [
            {"id": 1, "parent_id": 2, "role": "user", "content": "a"},
            {"id": 2, "parent_id": 1, "role": "assistant", "content": "b"},
        ]
    )
    assert "circle" in await refused(api, await import_json(api, circle), 422)


async def test_the_counts_are_limited(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imported, "MAX_CONVERSATIONS", 1)
    documents, _ = chatgpt_export()
    detail = await refused(api, await import_json(api, documents), 422)
    assert detail == "The file holds 2 conversations; at most 1 can be imported at once."
    monkeypatch.setattr(imported, "MAX_MESSAGES_PER_CONVERSATION", 5)
    detail = await refused(api, await import_json(api, documents[:1]), 422)
    assert "at most 5" in detail


async def test_a_form_without_a_file_is_refused(api: httpx.AsyncClient) -> None:
    form_without_a_file = {"note": (None, b"only a text field")}
    response = await api.post("/api/import", files=form_without_a_file)
    assert "Choose a file" in await refused(api, response, 422)


async def test_imports_belong_to_the_caller(db_app: FastAPI, api: httpx.AsyncClient) -> None:
    documents, _ = chatgpt_export()
    assert (await import_json(api, documents)).status_code == 201
    async with client_for(db_app) as other:
        assert await listed(other) == []
        mine = (await listed(api))[0]["id"]
        assert (await other.get(f"/api/conversations/{mine}")).status_code == 404
