"""How long the server takes to render a conversation page whose tree holds 500 messages.

A conversation of 50 turns, each question edited once (2 versions) and each version
answered 4 times (regenerations): 500 messages in its tree, of which the page shows its
path, 100 messages (50 answers of about 120 words of mixed Markdown, each rendered to
HTML on every view), each with its versions line, and three models offered (so every
answer's `Regenerate` has its model select). Written straight into the SQLite file
(`bench/tree.py`), then `GET /c/{id}` is timed in-process through the whole ASGI app
(middlewares, session cookie, store, templates; no sockets), `--runs` times after 5
warm-up requests:

- the first view of answers never shown (written before hxchat kept their HTML, or by
  an API client, or imported): the answers' kept HTML erased from the database and the
  worker's cache of rendered answers emptied before each request (untimed), so all 50
  are rendered, and their HTML kept (`store/rendered.py`);
- the first view after a restart: the cache emptied, the HTML kept in the database;
- the page shown again (its answers' HTML in the cache too);
- `GET /api/conversations/{id}` (the same path as JSON) beside them.

Each request's wall time and the process's CPU time (`time.process_time`: every thread,
the SQLite thread included, none of the machine's other processes) are printed, p50 and
p95. Target: the page under 50 ms of server time (p95), the first view after a restart
included.

Run: `.venv/bin/python -m bench.bench_tree_page` (a few seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
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
NEVER_SHOWN = "the page, its answers never shown before"
AFTER_RESTART = "the page, first view after a restart"


async def timed(
    client: httpx.AsyncClient, path: str, runs: int, forget: Callable[[], None] | None = None
) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds per request of `runs` GETs of `path`, each sorted;
    `forget` runs before each (untimed)."""
    for _ in range(WARM_UP):
        if forget is not None:
            forget()
        assert (await client.get(path)).status_code == 200
    wall, cpu = [], []
    for _ in range(runs):
        if forget is not None:
            forget()
        start, start_cpu = time.perf_counter(), time.process_time()
        response = await client.get(path)
        cpu.append((time.process_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    return sorted(wall), sorted(cpu)


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
            print(f"{'GET':<46}{'wall p50':>9}{'p95':>7}{'CPU p50':>9}{'p95':>7}  ms, {runs} runs")
            templates: Templates = app.state.templates

            def restart() -> None:  # a new worker: no answer rendered in its memory
                templates.rendered = RenderedAnswers()

            def never_shown() -> None:  # and no HTML kept: answers as before #10's 0009
                restart()
                with sqlite3.connect(database) as db:
                    db.execute("UPDATE messages SET rendered_html = NULL, rendered_by = NULL")

            results: dict[str, list[float]] = {}
            for name, path, before in (
                (NEVER_SHOWN, f"/c/{cid}", never_shown),
                (AFTER_RESTART, f"/c/{cid}", restart),
                ("the page, again", f"/c/{cid}", None),
                ("JSON", f"/api/conversations/{cid}", None),
            ):
                wall, cpu = await timed(client, path, runs, before)
                results[name] = cpu
                print(
                    f"{name:<46}{quantile(wall, 0.5):>9.1f}{quantile(wall, 0.95):>7.1f}"
                    f"{quantile(cpu, 0.5):>9.1f}{quantile(cpu, 0.95):>7.1f}"
                )
    for name in (AFTER_RESTART, "the page, again"):
        p95 = quantile(results[name], 0.95)
        met = "met" if p95 < TARGET_MS else "MISSED"
        print(f"target: {name} under {TARGET_MS:g} ms of CPU (p95): {p95:.1f} ms -> {met}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--answer-words", type=int, default=120)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.answer_words))
