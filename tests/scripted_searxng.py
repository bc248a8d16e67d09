"""A scripted SearXNG instance on loopback: its JSON search API, nothing else.

hxchat's `SearxngSearch` (real httpx, real HTTP) queries it; so can a real
`hxchat serve` with `HXCHAT_SEARCH=searxng HXCHAT_SEARXNG_URL=<server.base_url>`.
Each `GET /search?q=…&format=json` gets the next reply of the script (it starts
over when it runs out); by default every query finds three pages named after it.

In-process::

    with ScriptedSearxng() as searx:
        SearxngSearch(searx.base_url)
        searx.queries  # ["what was asked", ...]; GET /_requests answers the same

As a process (prints "listening on http://127.0.0.1:PORT")::

    python tests/scripted_searxng.py --port 0 --script results
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

if not __package__:  # run as `python tests/scripted_searxng.py`: find the `tests` package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.scripted_openai import Request, ScriptedHTTPServer, Writer, command_line


class SearxReply(Protocol):
    async def send(self, request: Request, writer: Writer) -> None: ...


def pages_for(query: str, count: int = 3) -> list[dict[str, str]]:
    """SearXNG result rows that name the query, at example.org (never fetched)."""
    slug = re.sub(r"[^a-z0-9]+", "-", query.lower()).strip("-") or "query"
    return [
        {
            "title": f"{query} — result {number}",
            "url": f"https://example.org/{slug}/{number}",
            "content": f"What page {number} says about {query}.",
            "engine": "scripted",
        }
        for number in range(1, count + 1)
    ]


@dataclass
class Results:
    """A normal answer: `rows` if given, else `count` pages named after the query."""

    rows: Sequence[dict[str, str]] | None = None
    count: int = 3

    async def send(self, request: Request, writer: Writer) -> None:
        if request.query.get("format") != "json":
            # What a real instance does when the JSON format is off or not asked for.
            await writer.send(403, b"Forbidden", "text/html")
            return
        query = request.query.get("q", "")
        rows = list(self.rows) if self.rows is not None else pages_for(query, self.count)
        await writer.send_json(
            200, {"query": query, "number_of_results": len(rows), "results": rows}
        )


@dataclass
class Fail:
    """An HTTP error page."""

    status: int = 500

    async def send(self, request: Request, writer: Writer) -> None:
        await writer.send(self.status, b"<html><body>Error</body></html>", "text/html")


@dataclass
class Slow:
    """No answer for `seconds`, then results."""

    seconds: float

    async def send(self, request: Request, writer: Writer) -> None:
        await asyncio.sleep(self.seconds)
        await Results().send(request, writer)


@dataclass
class Garbage:
    """A 200 answer that is not JSON."""

    async def send(self, request: Request, writer: Writer) -> None:
        await writer.send(200, b"<html>not json</html>", "text/html")


SCRIPTS: dict[str, Callable[[], list[SearxReply]]] = {
    "results": lambda: [Results()],
    "empty": lambda: [Results(rows=[])],
    "error500": lambda: [Fail(500)],
    "forbidden": lambda: [Fail(403)],
    "stall": lambda: [Slow(3600)],
    "garbage": lambda: [Garbage()],
}


class ScriptedSearxng(ScriptedHTTPServer):
    """Answers `GET /search` with the script's replies, in turn."""

    def __init__(
        self,
        script: Sequence[SearxReply] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.script = list(script) or [Results()]
        self._next = 0

    @property
    def queries(self) -> list[str]:
        """The `q` of every search so far."""
        return [r.query.get("q", "") for r in self.requests if r.path == "/search"]

    async def handle(self, request: Request, writer: Writer) -> None:
        if request.method == "GET" and request.path == "/_requests":
            await writer.send_json(200, self.queries)
        elif request.method == "GET" and request.path == "/search":
            reply = self.script[self._next % len(self.script)]
            self._next += 1
            await reply.send(request, writer)
        else:
            await writer.send(404, b"Not Found", "text/plain")


if __name__ == "__main__":
    command_line(ScriptedSearxng, SCRIPTS, "results")
