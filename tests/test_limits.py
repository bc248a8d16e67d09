"""Per-owner limits in every mode (here mode `none`, per anonymous owner): the message
rate and the running answers answer 429 with `Retry-After` and a sentence, also as the
page's composer error; with Redis, every worker shares one count."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from hxchat.config import Settings
from hxchat.store.migrate import upgrade
from tests import html_tree
from tests.helpers import REDIS_URL, client_for, need, new_conversation, running_app, send

HTMX = {"HX-Request": "true"}


async def test_the_message_rate_is_per_owner(make_settings: Callable[..., Settings]) -> None:
    async with (
        running_app(make_settings(rate_limit="2/minute")) as app,
        client_for(app) as client,
        client_for(app) as other,
    ):
        cid = await new_conversation(client)
        for _ in range(2):
            started = await send(client, cid, "hi")
            await client.get(started["events_url"])
        refused = await client.post(f"/api/conversations/{cid}/messages", json={"content": "hi"})
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.json()["detail"].startswith("You are sending messages too fast")
        assert (await client.post(f"/api/conversations/{cid}/retry")).status_code == 429

        page = await client.post("/send", data={"content": "hi"}, headers=HTMX)
        assert page.status_code == 429 and "retry-after" in page.headers
        assert page.headers["hx-retarget"] == "#composer-error"
        assert "<" not in page.text and page.text.endswith(".")
        assert len((await client.get(f"/api/conversations/{cid}")).json()["messages"]) == 4

        other_cid = await new_conversation(other)  # another owner has a count of its own
        await send(other, other_cid, "hi")


async def test_a_refused_request_costs_nothing_of_the_rate(
    make_settings: Callable[..., Settings],
) -> None:
    """The rate counts messages that started something: a send to a busy conversation
    (409), to one that does not exist (404), a retry with nothing to retry (422) and an
    edit of a message that is not there (404) are refused without using it up."""
    settings = make_settings(rate_limit="2/minute", echo_delay_ms=50)
    async with running_app(settings) as app, client_for(app) as client:
        busy = await new_conversation(client)
        first = await send(client, busy, "w " * 40)
        again = await client.post(f"/api/conversations/{busy}/messages", json={"content": "x"})
        assert again.status_code == 409
        missing = "0" * 32
        lost = await client.post(f"/api/conversations/{missing}/messages", json={"content": "x"})
        assert lost.status_code == 404
        empty = await new_conversation(client)
        assert (await client.post(f"/api/conversations/{empty}/retry")).status_code == 422
        edit = await client.post("/api/messages/999999/edit", json={"content": "x"})
        assert edit.status_code == 404
        await client.get(first["events_url"])

        await send(client, empty, "the second message of the minute")
        third = await client.post(f"/api/conversations/{busy}/messages", json={"content": "x"})
        assert third.status_code == 429


async def test_running_answers_are_limited_per_owner(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    """The check before the request (on PostgreSQL a read without a transaction) sees
    the running answer and refuses at once."""
    await upgrade(database_url)
    settings = make_settings(database_url=database_url, max_answers_per_user=1, echo_delay_ms=50)
    async with running_app(settings) as app, client_for(app) as client, client_for(app) as other:
        first = await send(client, await new_conversation(client), "w " * 100)
        second = await new_conversation(client)
        refused = await client.post(f"/api/conversations/{second}/messages", json={"content": "x"})
        assert refused.status_code == 429 and refused.headers["retry-after"] == "5"
        assert "1 answers being written" in refused.json()["detail"]
        page = await client.post("/send", data={"content": "x"}, headers=HTMX)
        assert page.status_code == 429 and page.headers["hx-retarget"] == "#composer-error"
        await send(other, await new_conversation(other), "hi")  # others are not held up

        await client.post(f"/api/generations/{first['generation_id']}/cancel")
        await client.get(first["events_url"])
        await send(client, second, "now it may")


async def test_concurrent_messages_never_pass_the_running_limit_together(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    """Six messages of one owner at the same moment, two answers allowed: the check
    before each request sees none running for all six; the store's, in the transaction
    that stores each answer, lets exactly two through."""
    await upgrade(database_url)
    settings = make_settings(database_url=database_url, max_answers_per_user=2, echo_delay_ms=50)
    async with running_app(settings) as app, client_for(app) as client:
        conversations = [await new_conversation(client) for _ in range(6)]
        answers = await asyncio.gather(
            *(
                client.post(f"/api/conversations/{cid}/messages", json={"content": "w " * 100})
                for cid in conversations
            )
        )
        assert sorted(a.status_code for a in answers) == [202, 202, 429, 429, 429, 429]
        refused = next(a for a in answers if a.status_code == 429)
        assert refused.headers["retry-after"] == "5"
        assert "2 answers being written" in refused.json()["detail"]
        shown = [(await client.get(f"/api/conversations/{cid}")).json() for cid in conversations]
        assert sorted(len(c["messages"]) for c in shown) == [0, 0, 0, 0, 2, 2]  # nothing kept


async def test_a_page_post_over_the_rate_shows_a_readable_page(
    make_settings: Callable[..., Settings],
) -> None:
    async with (
        running_app(make_settings(rate_limit="1/hour")) as app,
        client_for(app) as client,
    ):
        assert (await client.post("/send", data={"content": "hi"})).status_code == 303
        refused = await client.post("/send", data={"content": "again"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        composer = html_tree.parse(refused.text).find("form", id="composer")
        assert "too fast" in composer.find(id="composer-error").text
        assert composer.find("textarea", name="content").text == "again"  # the text stays


@pytest.mark.redis
async def test_workers_share_the_count_through_redis(
    make_settings: Callable[..., Settings],
) -> None:
    """Two apps on one database and one Redis, as two workers: the owner's third message
    is refused by the second worker after two on the first."""
    settings = make_settings(
        rate_limit="2/minute", redis_url=need(REDIS_URL, "HXCHAT_TEST_REDIS_URL")
    )
    async with (
        running_app(settings) as one,
        running_app(settings) as two,
        client_for(one) as a,
        client_for(two) as b,
    ):
        cid = await new_conversation(a)
        b.cookies = httpx.Cookies(a.cookies)
        for _ in range(2):
            started = await send(a, cid, "hi")
            await a.get(started["events_url"])
        refused = await b.post(f"/api/conversations/{cid}/messages", json={"content": "hi"})
        assert refused.status_code == 429
