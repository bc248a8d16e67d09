"""Web search backends: SearXNG over real HTTP (a scripted instance), DuckDuckGo's failures.

No test leaves loopback: SearXNG is scripted, and DuckDuckGo's library is pointed at
a loopback proxy (DDGS_PROXY) that refuses to forward, so every attempt stays here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from hxchat.config import Settings
from hxchat.errors import ConfigError, ProviderError
from hxchat.providers.search import (
    DuckDuckGoSearch,
    SearchHit,
    SearxngSearch,
    build_search,
    format_results,
)
from tests.scripted_openai import Request, ScriptedHTTPServer, Writer
from tests.scripted_searxng import Fail, Garbage, Results, ScriptedSearxng, SearxReply, Slow
from tests.servers import free_port


@pytest.fixture
def searx() -> Iterator[ScriptedSearxng]:
    with ScriptedSearxng([Results()]) as server:
        yield server


# -- format_results ---------------------------------------------------------------


def test_format_results_numbers_snippets_for_the_model() -> None:
    hits = [
        SearchHit("Paris", "https://example.org/paris", "The capital\n  of France."),
        SearchHit("", "https://example.org/untitled", ""),
    ]
    text = format_results(hits)
    assert text == (
        "[1] Paris — https://example.org/paris\nThe capital of France.\n\n"
        "[2] https://example.org/untitled — https://example.org/untitled"
    )
    assert format_results(hits[:1], start=4).startswith("[4] Paris")
    assert format_results([]) == "No results."


def test_format_results_caps_long_snippets() -> None:
    text = format_results([SearchHit("Long", "https://example.org/l", "word " * 1000)])
    assert len(text) < 600


# -- SearXNG ------------------------------------------------------------------------


async def test_searxng_returns_hits_for_the_query(searx: ScriptedSearxng) -> None:
    search = SearxngSearch(searx.base_url)
    try:
        hits = await search.search("capital of France", max_results=2)
    finally:
        await search.close()
    assert searx.queries == ["capital of France"]
    assert searx.requests[0].query["format"] == "json"
    assert [hit.url for hit in hits] == [
        "https://example.org/capital-of-france/1",
        "https://example.org/capital-of-france/2",
    ]
    assert hits[0].title.startswith("capital of France")
    assert "capital of France" in hits[0].snippet


async def test_searxng_skips_rows_without_url() -> None:
    rows = [{"title": "no url"}, {"title": "ok", "url": "https://example.org/ok"}]
    with ScriptedSearxng([Results(rows=rows)]) as server:
        search = SearxngSearch(server.base_url)
        try:
            hits = await search.search("q")
        finally:
            await search.close()
    assert hits == [SearchHit("ok", "https://example.org/ok", "")]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Fail(500), "answered with HTTP 500"),
        (Fail(403), "enable `json` under `search.formats`"),
        (Fail(429), "limiting requests"),
        (Garbage(), "not SearXNG's JSON"),
    ],
)
async def test_searxng_failures_are_readable(reply: SearxReply, expected: str) -> None:
    with ScriptedSearxng([reply, Results()]) as server:
        search = SearxngSearch(server.base_url)
        try:
            with pytest.raises(ProviderError) as caught:
                await search.search("q")
            assert caught.value.detail.startswith(
                f"Web search failed: the SearXNG server at {server.base_url} "
            )
            assert expected in caught.value.detail
            assert await search.search("q")  # the next search works
        finally:
            await search.close()


async def test_searxng_that_hangs_fails_within_the_timeout() -> None:
    with ScriptedSearxng([Slow(30)]) as server:
        search = SearxngSearch(server.base_url, timeout=0.5)
        began = time.monotonic()
        try:
            with pytest.raises(ProviderError, match=r"did not answer within 0\.5 seconds"):
                await search.search("q")
        finally:
            await search.close()
    assert time.monotonic() - began < 5


async def test_searxng_that_is_down_says_so() -> None:
    port = free_port()
    search = SearxngSearch(f"http://user:secret@127.0.0.1:{port}/")
    try:
        with pytest.raises(ProviderError) as caught:
            await search.search("q")
    finally:
        await search.close()
    assert caught.value.detail == (
        f"Web search failed: the SearXNG server at http://127.0.0.1:{port} "
        "did not answer (connection refused). Is it running?"
    )
    assert "secret" not in caught.value.detail


# -- DuckDuckGo ---------------------------------------------------------------------


class RefusingProxy(ScriptedHTTPServer):
    """An HTTP proxy on loopback that forwards nothing (and so proves no request left)."""

    async def handle(self, request: Request, writer: Writer) -> None:
        await writer.send(502, b"no", "text/plain")


async def test_duckduckgo_failure_is_readable(monkeypatch: pytest.MonkeyPatch) -> None:
    with RefusingProxy() as proxy:
        monkeypatch.setenv("DDGS_PROXY", proxy.origin)
        began = time.monotonic()
        with pytest.raises(ProviderError) as caught:
            await DuckDuckGoSearch(timeout=2).search("capital of France")
    assert caught.value.detail.startswith("Web search failed: DuckDuckGo ")
    assert time.monotonic() - began < 10
    assert proxy.requests, "the search went through the loopback proxy"
    assert all(request.method == "CONNECT" for request in proxy.requests)


# -- which backend --------------------------------------------------------------------


def test_build_search_follows_hxchat_search(make_settings: Callable[..., Settings]) -> None:
    assert build_search(make_settings(search="none")) is None
    assert isinstance(build_search(make_settings(search="auto")), DuckDuckGoSearch)
    assert isinstance(build_search(make_settings(search="duckduckgo")), DuckDuckGoSearch)
    searxng = build_search(make_settings(search="searxng", searxng_url="http://localhost:8888/"))
    assert isinstance(searxng, SearxngSearch)
    assert searxng.label == "the SearXNG server at http://localhost:8888"


def test_searxng_without_url_names_the_variable(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigError) as caught:
        build_search(make_settings(search="searxng"))
    assert caught.value.variable == "HXCHAT_SEARXNG_URL"
    assert str(caught.value).startswith("HXCHAT_SEARXNG_URL: ")
