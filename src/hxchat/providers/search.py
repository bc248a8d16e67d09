"""Web search for models that have no search of their own (OpenAI-compatible ones).

Two backends behind one small protocol: DuckDuckGo through the `ddgs` library, and
a SearXNG instance through its JSON API. Either way a failure becomes a
`ProviderError` whose sentence says which search failed and how, because the user
sees it as the answer's error. `format_results` turns hits into the numbered
snippets a model reads; the same numbers label the sources under the answer.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from hxchat.config import Settings
from hxchat.errors import ConfigError, ProviderError

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
SNIPPET_CHARS = 500


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result: a page and the text the search engine quoted from it."""

    title: str
    url: str
    snippet: str


class WebSearch(Protocol):
    #: e.g. "DuckDuckGo", "the SearXNG server at http://localhost:8888"; used in errors.
    label: str

    async def search(self, query: str, max_results: int = 5) -> list[SearchHit]:
        """The best hits for `query`; raises `ProviderError` when the search fails."""

    async def close(self) -> None:
        """Release connections."""


def format_results(hits: Sequence[SearchHit], start: int = 1) -> str:
    """Numbered snippets for the model: "[1] title — url" then the snippet."""
    if not hits:
        return "No results."
    blocks = []
    for number, hit in enumerate(hits, start=start):
        snippet = " ".join(hit.snippet.split())[:SNIPPET_CHARS]
        blocks.append(f"[{number}] {hit.title or hit.url} — {hit.url}\n{snippet}".rstrip())
    return "\n\n".join(blocks)


def connection_reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words, from the exception's chain of causes."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(str(error) for error in chain).lower()
    if any(isinstance(error, ConnectionRefusedError) for error in chain) or "refused" in text:
        return "connection refused"
    if any(isinstance(error, socket.gaierror) for error in chain) or "name resolution" in text:
        return "the host name could not be resolved"
    if any(isinstance(error, ssl.SSLError) for error in chain) or "certificate" in text:
        return "the TLS handshake failed"
    return "no connection"


def build_search(settings: Settings) -> WebSearch | None:
    """The web search HXCHAT_SEARCH names for an OpenAI-compatible model (None: no search)."""
    timeout = min(settings.token_timeout, DEFAULT_TIMEOUT)
    if settings.search == "none":
        return None
    if settings.search == "searxng":
        if not settings.searxng_url:
            raise ConfigError(
                "HXCHAT_SEARXNG_URL",
                "HXCHAT_SEARCH=searxng needs the base URL of a SearXNG instance, "
                "e.g. HXCHAT_SEARXNG_URL=http://localhost:8888",
            )
        return SearxngSearch(settings.searxng_url, timeout=timeout)
    return DuckDuckGoSearch(timeout=timeout)  # auto and duckduckgo


class DuckDuckGoSearch:
    """DuckDuckGo through `ddgs`, a synchronous library: it runs in a worker thread."""

    label = "DuckDuckGo"

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, backend: str = "duckduckgo") -> None:
        self.timeout = timeout
        self.backend = backend

    async def search(self, query: str, max_results: int = 5) -> list[SearchHit]:
        """DuckDuckGo's text results; raises `ProviderError` when it cannot answer."""
        from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

        try:
            async with asyncio.timeout(self.timeout + 1):
                rows = await asyncio.to_thread(self._search_sync, query, max_results)
        except (TimeoutError, TimeoutException):
            raise ProviderError(
                f"Web search failed: DuckDuckGo did not answer within {self.timeout:g} seconds. "
                "Please try again."
            ) from None
        except DDGSException as exc:
            reason = str(exc).lower()
            if "no results found" in reason:
                return []
            causes = (exc, *exc.args)
            if "ratelimit" in reason or any(isinstance(c, RatelimitException) for c in causes):
                raise ProviderError(
                    "Web search failed: DuckDuckGo is limiting requests right now. "
                    "Please try again in a minute."
                ) from None
            logger.warning("DuckDuckGo search failed: %s", type(exc).__name__)
            raise ProviderError(
                "Web search failed: DuckDuckGo could not be reached. "
                "Check the network, or set HXCHAT_SEARCH to another backend."
            ) from None
        hits = [
            SearchHit(
                title=str(row.get("title") or ""),
                url=str(row.get("href") or row.get("url") or ""),
                snippet=str(row.get("body") or ""),
            )
            for row in rows
        ]
        return [hit for hit in hits if hit.url][:max_results]

    def _search_sync(self, query: str, max_results: int) -> list[dict[str, Any]]:
        from ddgs import DDGS

        timeout = max(1, round(self.timeout))
        with DDGS(timeout=timeout) as ddgs:
            rows: list[dict[str, Any]] = ddgs.text(
                query, max_results=max_results, backend=self.backend
            )
        return rows

    async def close(self) -> None:
        return None


class SearxngSearch:
    """A SearXNG instance's JSON API: `GET {base}/search?q=…&format=json`."""

    def __init__(self, base_url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        parts = urlsplit(base_url)
        self.base_url = base_url.rstrip("/")
        # Never show credentials that may sit in the URL.
        self.label = f"the SearXNG server at {parts.scheme}://{parts.hostname}" + (
            f":{parts.port}" if parts.port else ""
        )
        self.timeout = timeout
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=True)

    async def search(self, query: str, max_results: int = 5) -> list[SearchHit]:
        """The instance's results; raises `ProviderError` when it cannot answer."""
        params = {"q": query, "format": "json"}
        try:
            response = await self._client.get(f"{self.base_url}/search", params=params)
        except httpx.TimeoutException:
            raise self._failed(f"did not answer within {self.timeout:g} seconds.") from None
        except httpx.ConnectError as exc:
            reason = connection_reason(exc)
            raise self._failed(f"did not answer ({reason}). Is it running?") from None
        except httpx.HTTPError as exc:
            logger.warning("SearXNG search failed: %s", type(exc).__name__)
            raise self._failed("broke off the connection. Please try again.") from None
        if response.status_code == 403:
            raise self._failed(
                "refused the JSON API (HTTP 403); enable `json` under `search.formats` "
                "in its settings.yml."
            )
        if response.status_code == 429:
            raise self._failed("is limiting requests (HTTP 429); please try again in a minute.")
        if response.status_code != 200:
            raise self._failed(f"answered with HTTP {response.status_code}. Please try again.")
        try:
            results = response.json()["results"]
            hits = [
                SearchHit(
                    title=str(row.get("title") or ""),
                    url=str(row.get("url") or ""),
                    snippet=str(row.get("content") or ""),
                )
                for row in results
            ]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise self._failed("sent an answer that is not SearXNG's JSON.") from None
        return [hit for hit in hits if hit.url][:max_results]

    def _failed(self, what: str) -> ProviderError:
        return ProviderError(f"Web search failed: {self.label} {what}")

    async def close(self) -> None:
        await self._client.aclose()
