"""How a message takes its files (#11), through the API and the page's form: the text
may be left out when files are given, and a file named twice is attached once."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers import events, new_conversation
from tests.html_tree import parse


async def uploaded(client: httpx.AsyncClient, name: str, data: bytes) -> dict[str, Any]:
    response = await client.post("/api/files", files={"file": (name, data)})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_files_without_content_are_a_message(client: httpx.AsyncClient) -> None:
    notes = await uploaded(client, "notes.txt", b"remember the milk")
    cid = await new_conversation(client)
    sent = await client.post(f"/api/conversations/{cid}/messages", json={"files": [notes["id"]]})
    assert sent.status_code == 202, sent.text
    await events(client, sent.json()["events_url"])
    question = (await client.get(f"/api/conversations/{cid}")).json()["messages"][0]
    assert (question["content"], question["files"]) == ("", [notes])
    nothing = await client.post(f"/api/conversations/{cid}/messages", json={})
    assert (nothing.status_code, nothing.json()) == (422, {"detail": "The message is empty."})


async def test_a_file_named_twice_is_attached_once(client: httpx.AsyncClient) -> None:
    one = await uploaded(client, "one.txt", b"one")
    two = await uploaded(client, "two.txt", b"two")
    cid = await new_conversation(client)
    sent = await client.post(
        f"/api/conversations/{cid}/messages",
        json={"content": "both", "files": [one["id"], two["id"], one["id"]]},
    )
    assert sent.status_code == 202, sent.text
    await events(client, sent.json()["events_url"])
    question = (await client.get(f"/api/conversations/{cid}")).json()["messages"][0]
    assert question["files"] == [one, two]

    posted = await client.post(
        "/send", data={"content": "again", "conversation_id": cid, "files": [two["id"]] * 2}
    )
    assert posted.status_code == 303
    page = parse((await client.get(posted.headers["location"])).text)
    last = page.find_all("article", **{"data-role": "user"})[-1]
    assert [a.text for a in last.find_all("a")] == ["two.txt"]
