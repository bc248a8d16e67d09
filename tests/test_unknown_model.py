"""A model that is not offered (#10): every way of starting an answer (send, edit,
regenerate; the API and the page's forms) answers 422 "Unknown model: <id>." and
neither stores nor counts anything against the owner's rate limit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from hxchat.config import Settings
from tests.helpers import client_for, events, new_conversation, running_app

NOPE = "openai:not-offered"
UNKNOWN = {"detail": f"Unknown model: {NOPE}."}


async def _messages(client: httpx.AsyncClient, cid: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = (await client.get(f"/api/conversations/{cid}")).json()[
        "messages"
    ]
    return messages


async def test_an_unknown_model_is_422_everywhere_and_costs_no_message(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(rate_limit="1/minute")
    async with running_app(settings) as app, client_for(app) as client:
        cid = await new_conversation(client)
        for _ in range(3):  # refused before the rate counts it: the one message is left
            refused = await client.post(
                f"/api/conversations/{cid}/messages", json={"content": "hi", "model": NOPE}
            )
            assert (refused.status_code, refused.json()) == (422, UNKNOWN)
        assert await _messages(client, cid) == []
        started = await client.post(f"/api/conversations/{cid}/messages", json={"content": "hi"})
        assert started.status_code == 202
        await events(client, started.json()["events_url"])
        question, answer = await _messages(client, cid)

        # The rate is used up now, yet a model not offered is still named as the fault.
        for url, body in (
            (f"/api/messages/{question['id']}/edit", {"content": "again", "model": NOPE}),
            (f"/api/messages/{answer['id']}/regenerate", {"model": NOPE}),
        ):
            refused = await client.post(url, json=body)
            assert (refused.status_code, refused.json()) == (422, UNKNOWN), url
        page = f"/c/{cid}/messages"
        for url, form in (
            (f"{page}/{question['id']}/edit", {"content": "again", "model": NOPE}),
            (f"{page}/{answer['id']}/regenerate", {"model": NOPE}),
        ):
            refused = await client.post(url, data=form)
            assert refused.status_code == 422, url
            assert f"Unknown model: {NOPE}." in refused.text
        assert await _messages(client, cid) == [question, answer]  # nothing stored
        over = await client.post(f"/api/messages/{answer['id']}/regenerate")
        assert over.status_code == 429  # a model that is offered: the rate applies
