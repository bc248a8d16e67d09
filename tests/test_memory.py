"""Everything held in memory is bounded: page loads and stream reads do not grow it."""

from __future__ import annotations

import gc
import tracemalloc

import httpx
from fastapi import FastAPI

from tests.helpers import client_for, events, new_conversation, send


async def _allocated() -> int:
    gc.collect()
    current, _peak = tracemalloc.get_traced_memory()
    return current


async def test_a_thousand_page_loads_and_reads_do_not_grow_memory(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    cid = await new_conversation(client)
    started = await send(client, cid, "a finished answer")
    await events(client, started["events_url"])

    async def load(n: int) -> None:
        for i in range(n):
            if i % 2:
                # a new visitor every other time: a new session, nothing stored for it
                async with client_for(app) as stranger:
                    assert (await stranger.get("/")).status_code == 200
            else:
                assert (await client.get(f"/c/{cid}")).status_code == 200
            if i % 10 == 0:
                await events(client, started["events_url"])

    await load(100)  # warm caches (templates, SQL statements)
    tracemalloc.start()
    try:
        before = await _allocated()
        await load(1000)
        after = await _allocated()
    finally:
        tracemalloc.stop()
    assert after - before < 1_500_000, f"grew by {after - before:,} bytes"
    runner = app.state.runner
    assert runner.running == 0
