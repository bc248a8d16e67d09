"""How long the server takes to render a conversation page whose tree holds 500 messages.

A conversation of 50 turns, each question edited once (2 versions) and each version
answered 4 times (regenerations): 500 messages in its tree, of which the page shows its
path, 100 messages (50 answers of about 120 words of mixed Markdown, each rendered to
HTML on every view), each with its versions line, and three models offered (so every
answer's `Regenerate` has its model select). Written straight into the SQLite file
(`bench/tree.py`), then `GET /c/{id}` is timed in-process through the whole ASGI app
(middlewares, session cookie, store, templates; no sockets), `--runs` times after 5
warm-up requests: the first view (no answer rendered yet: the cache of rendered
answers emptied before each request, untimed) and a page shown again (its answers'
HTML remembered, `render/cache.py`); `GET /api/conversations/{id}` (the same path as
JSON) beside them. Target: the page under 50 ms of server time (p50).

Run: `.venv/bin/python -m bench.bench_tree_page` (a few seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.machine import describe
from bench.tree import THREE_MODELS_ENV, fill_trees
from hxchat.app import create_app
from hxchat.config import load_settings
from hxchat.render.cache import RenderedAnswers
from hxchat.web.templating import Templates

TURNS, EDITS, VERSIONS = 50, 2, 4  # 50 * 2 * (1 + 4) = 500 messages
WARM_UP = 5
TARGET_MS = 50.0


async def timed(
    client: httpx.AsyncClient, path: str, runs: int, forget: Callable[[], None] | None = None
) -> list[float]:
    """Milliseconds per request of `runs` GETs of `path`, sorted; `forget` runs before
    each (untimed)."""
    for _ in range(WARM_UP):
        assert (await client.get(path)).status_code == 200
    times = []
    for _ in range(runs):
        if forget is not None:
            forget()
        start = time.perf_counter()
        response = await client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    return sorted(times)


def quantile(times: list[float], q: float) -> float:
    return times[min(len(times) - 1, int(q * len(times)))]


async def main(runs: int, answer_words: int) -> None:
    for line in describe():
        print(line)
    os.environ.update(THREE_MODELS_ENV)
    with tempfile.TemporaryDirectory(prefix="hxchat-bench-") as tmp:
        database = Path(tmp) / "bench.db"
        settings = load_settings(database_url=f"sqlite+aiosqlite:///{database}")
        app = create_app(settings)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
        ):
            response = await client.post("/api/conversations")
            cid = response.json()["id"]
            written = fill_trees(
                database,
                [cid],
                turns=TURNS,
                versions=VERSIONS,
                edits=EDITS,
                answer_words=answer_words,
            )
            shown = len((await client.get(f"/api/conversations/{cid}")).json()["messages"])
            page = await client.get(f"/c/{cid}")
            print(
                f"\na conversation of {written} messages in its tree, {shown} on its path; "
                f"answers of ~{answer_words} words; three models offered; the page is "
                f"{len(page.content) / 1024:.0f} KB"
            )
            print(f"{'GET':<40}{'p50 ms':>8}{'p95 ms':>8}{'mean ms':>9}  ({runs} runs)")
            templates: Templates = app.state.templates

            def forget() -> None:  # as if no answer of the page had been rendered yet
                templates.rendered = RenderedAnswers()

            results: dict[str, list[float]] = {}
            for name, path, before in (
                ("the page, first view (nothing cached)", f"/c/{cid}", forget),
                ("the page, again", f"/c/{cid}", None),
                ("JSON", f"/api/conversations/{cid}", None),
            ):
                times = results[name] = await timed(client, path, runs, before)
                print(
                    f"{name:<40}{quantile(times, 0.5):>8.1f}{quantile(times, 0.95):>8.1f}"
                    f"{statistics.fmean(times):>9.1f}"
                )
    for name in ("the page, first view (nothing cached)", "the page, again"):
        p50 = quantile(results[name], 0.5)
        met = "met" if p50 < TARGET_MS else "MISSED"
        print(f"target: {name} under {TARGET_MS:g} ms of server time (p50): {p50:.1f} ms -> {met}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--answer-words", type=int, default=120)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.answer_words))
