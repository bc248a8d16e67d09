"""The words of a search and the snippets of its results (#12), and any text at all as a
search on a real SQLite index: never an error, never syntax."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from hxchat.search_text import chunks, fold, marked, snippet, words
from hxchat.store.engine import make_sqlite_engine
from hxchat.store.migrate import upgrade
from hxchat.store.search_query import find, fts5_match, tsquery
from hxchat.store.sql import open_store
from tests.store_helpers import answered_turn

SYNTAX = "\"*:^&|!()-+<>{}'\\~@#%,.;NEAR AND OR NOT"


def test_folding_lowers_and_drops_accents() -> None:
    assert fold("Café CRÈME Ελληνικά Привет") == "cafe creme ελληνικα привет"


def test_pieces_without_a_letter_or_digit_are_dropped() -> None:
    assert chunks('" * & || ! ( ) - ^') == []
    assert chunks("NEAR(a, b) -x it's") == ["NEAR(a,", "b)", "-x", "it's"]
    assert chunks("a\x00b\ud800c") == ["a", "b", "c"]  # control characters are spaces
    assert len(chunks("w " * 20)) == 8


def test_quotes_are_escaped_in_both_syntaxes() -> None:
    assert fts5_match(None, ['say"hi', "x"]) == '{title body} : ("say""hi"* AND "x"*)'
    assert tsquery(["it's", "a\\b"]) == "'it''s':* & 'a\\\\b':*"


def test_marked_and_snippet() -> None:
    assert marked("Un café, des Cafés!", ["cafe"]) == [
        ("Un ", False),
        ("café", True),
        (", des ", False),
        ("Cafés", True),
        ("!", False),
    ]
    text = "start " + "filler " * 50 + "the narwhal here " + "filler " * 50
    cut = snippet(text, ["narwhal"])
    assert "narwhal" in cut and cut.startswith("…") and cut.endswith("…") and len(cut) <= 162
    assert snippet("short text", ["absent"]) == "short text"


@given(st.text(max_size=200), st.lists(st.text(min_size=1, max_size=5), max_size=3))
def test_marking_keeps_every_character(text: str, typed: list[str]) -> None:
    terms = [w for t in typed for w in words(t)]
    assert "".join(piece for piece, _ in marked(text, terms)) == text
    assert len(snippet(text, terms)) <= 162


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A SQLite file with the index and a few messages of `alice`."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('search') / 'hxchat.db'}"

    async def fill() -> None:
        await upgrade(url)
        store = await open_store(url)
        try:
            cid = await store.create_conversation("alice")
            question, answer = 'NEAR "quoted" c++ a:b x&y', "answer * with (syntax) -minus ^caret"
            await answered_turn(store, "alice", cid, question, answer, "g")
        finally:
            await store.close()

    asyncio.run(fill())
    engine = make_sqlite_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), st.text(alphabet=SYNTAX + " ab", max_size=40)))
def test_any_text_is_a_search_without_error(index: Engine, typed: str) -> None:
    with index.connect() as conn:
        found = find(conn, "alice", typed)
    assert len(found) <= 50


@pytest.mark.parametrize(
    ("typed", "role"),
    [
        ("NEAR", "user"),
        ('"quoted"', "user"),
        ("a:b", "user"),
        ("x&y", "user"),
        ("(syntax)", "assistant"),
        ("-minus", "assistant"),
        ("^caret", "assistant"),
    ],
)
def test_syntax_characters_around_words_find_them(index: Engine, typed: str, role: str) -> None:
    with index.connect() as conn:
        found = find(conn, "alice", typed)
        assert [
            conn.exec_driver_sql(f"SELECT role FROM messages WHERE id = {hit.message_id}").scalar()
            for hit in found
        ] == [role]
