"""Searching one's conversations (#12), through the API of a real app on a SQLite file
and on a fresh PostgreSQL database: words of several scripts, prefixes, titles, the
index kept current as answers end and as conversations are edited, retried and
deleted, hostile input, and other people's words never found."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import Connection

from hxchat.config import Settings
from hxchat.store.migrate import upgrade
from hxchat.store.sql import SqlStore, open_store
from tests.helpers import client_for, events, new_conversation, running_app, send
from tests.store_helpers import answered_turn


@pytest.fixture
async def app(database_url: str, make_settings: Callable[..., Settings]) -> AsyncIterator[FastAPI]:
    await upgrade(database_url)
    settings = make_settings(database_url=database_url, rate_limit="1000/minute")
    async with running_app(settings) as a:
        yield a


async def search(client: httpx.AsyncClient, q: str) -> list[dict[str, Any]]:
    response = await client.get("/api/search", params={"q": q})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    for hit in found:
        assert set(hit) == {"conversation_id", "title", "message_id", "snippet"}
    return found


def ids(found: list[dict[str, Any]]) -> set[int]:
    return {hit["message_id"] for hit in found}


async def answered(client: httpx.AsyncClient, cid: str, content: str) -> tuple[int, int]:
    """Ask (the echo model answers with the same words); the question's and answer's ids."""
    started = await send(client, cid, content)
    _, evs = await events(client, started["events_url"])
    assert evs[-1].event == "done"
    return started["message_id"], evs[-1].json()["message_id"]


async def finished(client: httpx.AsyncClient, response: httpx.Response) -> int:
    """The answer's id once the turn started by `response` has ended."""
    assert response.status_code == 202, response.text
    _, evs = await events(client, response.json()["events_url"])
    assert evs[-1].event == "done"
    return int(evs[-1].json()["message_id"])


SCRIPTS = [
    # (what was written, what is searched for)
    ("Un café crème à Paris", "cafe"),  # accents folded one way
    ("The cafe on the corner", "café"),  # and the other
    ("ÉCOLE MATERNELLE", "école"),  # case too
    ("Привет, как дела сегодня", "привет"),
    ("Привет, как дела сегодня", "ДЕЛ"),  # Cyrillic prefix, any case
    ("Καλημέρα κόσμε από την Αθήνα", "καλημέρα"),
    ("Καλημέρα κόσμε από την Αθήνα", "αθ"),  # Greek prefix
    ("東京 は 晴れ です", "東京"),  # CJK: the tokenizers cut at spaces and punctuation
    ("猫が好き、犬も好き", "猫"),  # CJK: a run of ideographs is found by its start
    ("Alembic migrations with SQLAlchemy", "migr"),  # a prefix
    ("Alembic migrations with SQLAlchemy", "alembic sqlalchemy"),  # every word, any order
]


@pytest.mark.parametrize(("written", "searched"), SCRIPTS)
async def test_words_of_any_script_are_found_whole_and_as_prefixes(
    client: httpx.AsyncClient, written: str, searched: str
) -> None:
    cid = await new_conversation(client)
    question, answer = await answered(client, cid, written)
    found = await search(client, searched)
    assert ids(found) == {question, answer}
    assert {hit["conversation_id"] for hit in found} == {cid}
    assert found[0]["snippet"] == written


async def test_every_word_must_match(client: httpx.AsyncClient) -> None:
    await answered(client, await new_conversation(client), "red apples and green pears")
    assert await search(client, "apples pears")
    assert await search(client, "apples bananas") == []
    assert await search(client, "xylophone") == []


async def test_a_turn_is_found_once_its_answer_has_ended_not_while_it_streams(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    """The question joins the index with its answer, when the answer ends, not while it
    streams (the first turn gave the title: its words are not searched here)."""
    await upgrade(database_url)
    slow = make_settings(database_url=database_url, echo_delay_ms=150)
    async with running_app(slow) as app, client_for(app) as client:
        cid = await new_conversation(client)
        _, evs = await events(client, (await send(client, cid, "a first turn"))["events_url"])
        started = await send(client, cid, "quokka " + "and more words " * 4)
        assert await search(client, "quokka") == []  # neither the question nor half an answer
        _, evs = await events(client, started["events_url"])
        answer = evs[-1].json()["message_id"]
        assert ids(await search(client, "quokka")) == {started["message_id"], answer}


async def test_a_question_whose_worker_died_is_found_with_its_swept_answer(
    database_url: str,
) -> None:
    """An answer swept as interrupted (its worker gone, its lease expired) brings its
    question into the index, as an answer that ends does."""
    await upgrade(database_url)
    store = await open_store(database_url)
    try:
        cid = await store.create_conversation("alice")
        await answered_turn(store, "alice", cid, "hello", "hello back", "gen-1")
        started = await store.start_turn("alice", cid, "pangolin scales", "gen-2", "w", -1)
        assert await store.search("alice", "pangolin") == []
        assert [g.id for g in await store.sweep_expired()] == ["gen-2"]
        hits = await store.search("alice", "pangolin")
        assert [hit.message_id for hit in hits] == [started.user_message_id]
    finally:
        await store.close()


async def test_titles_are_found_and_follow_a_rename(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    cid = await new_conversation(client)
    question, _ = await answered(client, cid, "hello there")
    store: SqlStore = app.state.store

    def rename(title: str) -> Callable[[Connection], None]:
        def work(conn: Connection) -> None:  # as any writer of titles does (#12's triggers)
            conn.execute(
                text("UPDATE conversations SET title = :t WHERE id = :c"), {"t": title, "c": cid}
            )

        return work

    await store.run(True, rename("Notes about Zanzibar"))
    found = await search(client, "zanzi")
    # A title points at the conversation's first message.
    assert [(hit["conversation_id"], hit["message_id"]) for hit in found] == [(cid, question)]
    assert found[0]["title"] == "Notes about Zanzibar"
    await store.run(True, rename("Notes about Madagascar"))
    assert await search(client, "zanzibar") == []
    assert ids(await search(client, "madagascar")) == {question}


async def test_a_conversation_with_nothing_written_is_not_found_by_its_title(
    client: httpx.AsyncClient,
) -> None:
    await new_conversation(client)  # titled "New chat"
    assert await search(client, "new chat") == []


async def test_a_deleted_conversation_is_gone(client: httpx.AsyncClient) -> None:
    cid = await new_conversation(client)
    await answered(client, cid, "platypus facts")
    assert await search(client, "platypus")
    assert (await client.delete(f"/api/conversations/{cid}")).status_code == 204
    assert await search(client, "platypus") == []
    assert await search(client, "facts") == []


async def test_retry_replaces_the_answer_that_is_found(client: httpx.AsyncClient) -> None:
    cid = await new_conversation(client)
    question, first = await answered(client, cid, "wombat burrows")
    retried = await finished(client, await client.post(f"/api/conversations/{cid}/retry"))
    assert ids(await search(client, "wombat")) == {question, retried}
    # The old version shows again: it is found again, and the retried one is not.
    assert (await client.post(f"/api/messages/{first}/select")).status_code == 200
    assert ids(await search(client, "wombat")) == {question, first}


async def test_an_edit_replaces_the_question_and_what_followed_it(
    client: httpx.AsyncClient,
) -> None:
    cid = await new_conversation(client)
    question, _ = await answered(client, cid, "the emu question")
    later, _ = await answered(client, cid, "the emu follow up")
    edit = await client.post(
        f"/api/messages/{question}/edit", json={"content": "the kiwi question"}
    )
    edited = edit.json()["message_id"]
    new_answer = await finished(client, edit)
    assert ids(await search(client, "kiwi")) == {edited, new_answer}
    # The old branch is not shown, so not found: "emu" is left only in the title (the
    # first message's words), which points at the question the conversation shows.
    assert await search(client, "follow") == []
    assert ids(await search(client, "emu")) == {edited}
    assert later not in ids(await search(client, "question"))


async def test_regenerate_replaces_the_answer_that_is_found(client: httpx.AsyncClient) -> None:
    cid = await new_conversation(client)
    question, first = await answered(client, cid, "koala diet")
    regenerated = await finished(client, await client.post(f"/api/messages/{first}/regenerate"))
    assert ids(await search(client, "koala")) == {question, regenerated}


HOSTILE = [
    '"',
    '""',
    '"unterminated',
    "*",
    "**",
    "a*",
    "NEAR",
    "NEAR(word other, 2)",
    "AND",
    "OR",
    "NOT",
    "word AND NOT other",
    "body:word",
    ":",
    "{title body}: word",
    "^word",
    "word^",
    "-word",
    "- - -",
    "&",
    "word & other",
    "|",
    "word | other",
    "!",
    "!word",
    "!!",
    "(",
    ")",
    "(word",
    "<->",
    "word <-> other",
    "word <2> other",
    "'",
    "''",
    "it's",
    "\\",
    "word\\",
    "word:*",
    "word:A",
    "word:*A & !other",
    "'word':*",
    "\x00",
    "word\x00other",
    "\ud800",
    "+",
    "%",
    "_",
    "…",
    "🙂",
    "a" * 500,
    "word " * 100,
]


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_query_syntax_is_only_words(client: httpx.AsyncClient, hostile: str) -> None:
    await answered(client, await new_conversation(client), "word other")
    raw = quote(hostile.encode("utf-8", "surrogatepass"))  # a lone surrogate too
    response = await client.get(f"/api/search?q={raw}")
    assert response.status_code == 200, response.text
    body = response.text.lower()
    for leak in ("syntax", "fts5", "tsquery", "sqlite", "postgres", "error"):
        assert leak not in body


async def test_operators_written_in_a_message_are_searched_as_words(
    client: httpx.AsyncClient,
) -> None:
    cid = await new_conversation(client)
    question, answer = await answered(client, cid, "use NEAR and NOT or AND, then foo.bar & baz")
    for typed in ("NEAR", "not", "AND", "foo.bar", "foo.ba", "NEAR NOT AND"):
        assert ids(await search(client, typed)) == {question, answer}, typed


async def test_another_owners_words_are_never_found(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    mine = await new_conversation(client)
    await answered(client, mine, "secret pangolin plans")
    theirs = await new_conversation(other_client)
    await answered(other_client, theirs, "public pangolin photos")
    mine_found = await search(client, "pangolin")
    assert {hit["conversation_id"] for hit in mine_found} == {mine}
    assert await search(other_client, "secret") == []
    assert {hit["conversation_id"] for hit in await search(other_client, "pangolin")} == {theirs}


async def test_empty_and_overlong_searches(client: httpx.AsyncClient) -> None:
    await answered(client, await new_conversation(client), "anything at all")
    assert await search(client, "") == []
    assert await search(client, "   ") == []
    assert (await client.get("/api/search")).json() == []
    response = await client.get("/api/search", params={"q": "x" * 501})
    assert response.status_code == 422
    assert "too long" in response.json()["detail"]


async def test_a_snippet_is_plain_text_around_the_match(client: httpx.AsyncClient) -> None:
    long_text = "lorem ipsum " * 60 + "the <b>narwhal</b> tusk " + "dolor sit amet " * 60
    await answered(client, await new_conversation(client), long_text)
    found = await search(client, "narwhal")
    assert found
    for hit in found:
        assert "narwhal" in hit["snippet"] and len(hit["snippet"]) < 200
        assert hit["snippet"].startswith("…") and hit["snippet"].endswith("…")


async def test_at_most_fifty_results_best_first(client: httpx.AsyncClient) -> None:
    cid = await new_conversation(client)
    first, _ = await answered(client, cid, "gecko number 0")  # the title, too
    for n in range(1, 30):
        await answered(client, cid, f"gecko number {n}")
    await answered(client, cid, "gecko gecko gecko gecko")
    found = await search(client, "gecko")
    assert len(found) == 50
    messages = [hit["snippet"] for hit in found if hit["message_id"] != first]
    assert messages[:2] == ["gecko gecko gecko gecko"] * 2  # the question and its echo


async def test_an_imported_conversation_is_found_by_the_path_it_shows(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    cid = await new_conversation(client)
    question, _ = await answered(client, cid, "the tarsier question")
    edit = await client.post(f"/api/messages/{question}/edit", json={"content": "the lemur one"})
    await finished(client, edit)
    exported = (await client.get("/api/export")).content
    response = await other_client.post(
        "/api/import", files={"file": ("hxchat-export.json", exported, "application/json")}
    )
    assert response.status_code == 201, response.text
    found = await search(other_client, "lemur")
    assert len(found) == 2 and {hit["conversation_id"] for hit in found}.isdisjoint({cid})
    # The version the conversation does not show is not found; its title still is.
    assert [hit["snippet"] for hit in await search(other_client, "tarsier")] == ["the lemur one"]
