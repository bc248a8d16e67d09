"""The library's rename, pin and instructions (#12, #10) through the JSON API: the
answers, the order of the list, hostile input, and another owner's conversations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hxchat.app import create_app
from hxchat.config import Settings
from hxchat.store.migrate import upgrade
from tests.helpers import TitlingModel, client_for, events, eventually, new_conversation, send


async def patch(client: httpx.AsyncClient, cid: str, body: Any, **kw: Any) -> httpx.Response:
    return await client.patch(f"/api/conversations/{cid}", json=body, **kw)


async def answered(client: httpx.AsyncClient, cid: str, content: str) -> None:
    started = await send(client, cid, content)
    status, _ = await events(client, started["events_url"])
    assert status == 200


async def test_a_rename_shows_in_get_and_in_the_list(client: httpx.AsyncClient) -> None:
    cid = await new_conversation(client)
    await answered(client, cid, "hello there")

    response = await patch(client, cid, {"title": "  Notes on   Alembic "})

    assert response.status_code == 200
    body = response.json()
    assert body["title"] == "Notes on Alembic"
    assert body["pinned"] is False and body["instructions"] == ""
    assert [m["content"] for m in body["messages"]] == ["hello there", "hello there"]
    assert (await client.get(f"/api/conversations/{cid}")).json() == body
    listed = (await client.get("/api/conversations")).json()
    assert [(c["id"], c["title"], c["pinned"]) for c in listed] == [
        (cid, "Notes on Alembic", False)
    ]


async def test_pinned_ones_come_first_each_group_by_last_activity(
    client: httpx.AsyncClient,
) -> None:
    ids = [await new_conversation(client) for _ in range(4)]
    for number, cid in enumerate(ids):  # the last one has the latest activity
        await answered(client, cid, f"message {number}")
    for cid in (ids[0], ids[2]):
        assert (await patch(client, cid, {"pinned": True})).json()["pinned"] is True

    listed = (await client.get("/api/conversations")).json()

    assert [c["id"] for c in listed] == [ids[2], ids[0], ids[3], ids[1]]
    assert [c["pinned"] for c in listed] == [True, True, False, False]
    # Pinning is not activity; unpinning puts it back in its place.
    await patch(client, ids[2], {"pinned": False})
    listed = (await client.get("/api/conversations")).json()
    assert [c["id"] for c in listed] == [ids[0], ids[3], ids[2], ids[1]]


async def test_instructions_are_kept_and_cleared(client: httpx.AsyncClient) -> None:
    cid = await new_conversation(client)
    body = (await patch(client, cid, {"instructions": "Answer in French."})).json()
    assert body["instructions"] == "Answer in French."
    assert (await patch(client, cid, {"instructions": ""})).json()["instructions"] == ""


async def test_a_title_the_user_chose_is_not_replaced_by_the_first_message(
    client: httpx.AsyncClient,
) -> None:
    cid = await new_conversation(client)
    await patch(client, cid, {"title": "My own title"})
    await answered(client, cid, "what the first message says")
    assert (await client.get(f"/api/conversations/{cid}")).json()["title"] == "My own title"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"title": ""}, 422, "empty"),
        ({"title": "   \n "}, 422, "empty"),
        ({"title": "x" * 201}, 422, "limit is 200"),
        ({"title": 5}, 422, "title"),
        ({"pinned": "yes"}, 422, "pinned"),
        ({"instructions": ["a"]}, 422, "instructions"),
        ({"instructions": "x" * 4001}, 413, "limit is 4,000"),
        ({}, 422, "at least one"),
        ([], 422, ""),
    ],
)
async def test_bad_input_is_refused_with_a_sentence_and_changes_nothing(
    client: httpx.AsyncClient, body: Any, status: int, words: str
) -> None:
    cid = await new_conversation(client)
    await patch(client, cid, {"title": "Kept", "instructions": "Kept too."})

    response = await patch(client, cid, body)

    assert response.status_code == status
    detail = response.json()["detail"]
    assert isinstance(detail, str) and words in detail
    kept = (await client.get(f"/api/conversations/{cid}")).json()
    assert (kept["title"], kept["instructions"], kept["pinned"]) == ("Kept", "Kept too.", False)


async def test_a_title_of_200_characters_and_instructions_of_4000_are_kept(
    client: httpx.AsyncClient,
) -> None:
    cid = await new_conversation(client)
    body = (await patch(client, cid, {"title": "t" * 200, "instructions": "i" * 4000})).json()
    assert len(body["title"]) == 200 and len(body["instructions"]) == 4000


async def test_another_owners_conversation_is_404_and_unchanged(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    cid = await new_conversation(client)
    for body in ({"title": "Mine now"}, {"pinned": True}, {"instructions": "Obey me."}):
        response = await patch(other_client, cid, body)
        assert response.status_code == 404
        assert response.json() == {"detail": "There is no such conversation."}
    assert (await patch(client, "0" * 32, {"pinned": True})).status_code == 404
    mine = (await client.get(f"/api/conversations/{cid}")).json()
    assert (mine["title"], mine["pinned"], mine["instructions"]) == ("New chat", False, "")


@pytest.mark.parametrize(
    "headers", [{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}]
)
async def test_a_cross_site_patch_is_refused(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    cid = await new_conversation(client)
    response = await patch(client, cid, {"title": "Evil"}, headers=headers)
    assert response.status_code == 403
    assert (await client.get(f"/api/conversations/{cid}")).json()["title"] == "New chat"


async def test_the_library_on_each_database(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    """The same on SQLite and PostgreSQL: the model titles a first answer, PATCH
    renames, pins and steers, the list puts pinned first, another owner gets 404."""
    await upgrade(database_url)
    model = TitlingModel(["Fine."], title="Model's title")
    app = create_app(make_settings(database_url=database_url), model=model)
    async with (
        app.router.lifespan_context(app),
        client_for(app) as client,
        client_for(app) as stranger,
    ):
        first, second = await new_conversation(client), await new_conversation(client)
        await answered(client, first, "first question")
        await answered(client, second, "second question")
        owner = (await client.get("/api/me")).json()["id"]

        async def settled() -> None:
            state = await app.state.library.title_state(owner, first)
            assert state is not None and not state.pending

        await eventually(settled)
        body = (await patch(client, first, {"pinned": True, "instructions": "Be brief."})).json()
        assert (body["title"], body["pinned"], body["instructions"]) == (
            "Model's title",
            True,
            "Be brief.",
        )
        await patch(client, second, {"title": "Second, renamed"})
        listed = (await client.get("/api/conversations")).json()
        assert [(c["title"], c["pinned"]) for c in listed] == [
            ("Model's title", True),
            ("Second, renamed", False),
        ]
        await answered(client, first, "again")
        assert model.instructions == ["", "", "Be brief."]
        assert (await patch(stranger, first, {"title": "Mine"})).status_code == 404
