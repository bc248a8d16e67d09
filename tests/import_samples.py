"""What the import tests share (#12): a ChatGPT export to import, hxchat documents made
by hand, and the API calls that look at what arrived."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.chatgpt_export import IMAGE_PART, ChatGptConversation


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


def hxchat_document(messages: list[dict[str, Any]], **conversation: Any) -> dict[str, Any]:
    one = {"id": "c1", "title": "Made by hand", "messages": messages, **conversation}
    return {"format": "hxchat", "version": 1, "conversations": [one]}


async def refused(client: httpx.AsyncClient, response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail.endswith("."), detail
    assert "Traceback" not in detail and "Error" not in detail
    assert await listed(client) == []  # nothing half-imported
    return detail
