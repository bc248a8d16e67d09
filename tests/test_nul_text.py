"""A NUL character, from a user or from a hostile model, breaks nothing on either
database: PostgreSQL's text cannot hold one, so both engines store it as U+FFFD (the
character the renderer shows for it), and ids with a NUL in them are simply not found."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hxchat.app import create_app
from hxchat.config import Settings
from hxchat.store.migrate import upgrade
from tests.helpers import ScriptedModel, client_for, events, new_conversation, send


@pytest.mark.parametrize(
    "path",
    [
        "/api/conversations/x%00y",
        "/c/x%00y",
        "/api/generations/x%00y/events",
        "/api/messages/1%00/feedback",
    ],
)
async def test_an_id_with_a_nul_is_not_found(
    make_settings: Callable[..., Settings], database_url: str, path: str
) -> None:
    await upgrade(database_url)
    app = create_app(make_settings(database_url=database_url))
    async with app.router.lifespan_context(app), client_for(app) as client:
        method = "PUT" if path.endswith("/feedback") else "GET"
        response = await client.request(method, path, json={"rating": "up"})
        assert response.status_code in (404, 422), response.text
        assert "0x00" not in response.text and "UTF8" not in response.text


async def test_a_nul_from_the_user_and_from_the_model_is_kept_as_a_replacement_character(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    await upgrade(database_url)
    model = ScriptedModel(words=["bad\x00", " byte"])
    app = create_app(make_settings(database_url=database_url), model=model)
    async with app.router.lifespan_context(app), client_for(app) as client:
        cid = await new_conversation(client)
        started = await send(client, cid, "a\x00b")
        await events(client, started["events_url"])

        conversation = (await client.get(f"/api/conversations/{cid}")).json()
        question, answer = conversation["messages"]
        assert question["content"] == "a\ufffdb"
        assert answer["content"] == "bad\ufffd byte"
        assert answer["status"] == "complete"
