"""Compression: the event streams frame by frame, pages and static files whole.

The live test runs the app under uvicorn on a real loopback socket and reads a gzip
stream as a browser would, decompressing each read as it arrives: every word must
decode within a second of being due, while the answer is still being written. The
others go through the ASGI app in process and compare bytes.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from hxchat.web.compression import DEFLATE, GZIP, negotiate
from tests import sse
from tests.helpers import eventually, new_conversation, running_app, send
from tests.servers import free_port

STATIC = Path(__file__).resolve().parent.parent / "src" / "hxchat" / "static"
DELAY = 0.15  # seconds between two words of the echo model in the live test
WORDS = 14
LATE = 1.0  # a word decoded more than this after it was due has waited in a buffer


@pytest.mark.parametrize(
    ("header", "coding"),
    [
        (None, None),
        ("", None),
        ("gzip", GZIP),
        ("deflate", DEFLATE),
        ("gzip, deflate, br, zstd", GZIP),
        ("deflate, gzip", GZIP),  # gzip on a tie
        ("gzip;q=0", None),
        ("gzip;q=0, deflate", DEFLATE),
        ("GZIP ; Q=0.000", None),
        ("gzip;q=0.5, deflate;q=0.8", DEFLATE),
        ("x-gzip", GZIP),
        ("*", GZIP),
        ("*;q=0", None),
        ("gzip;q=0, *", DEFLATE),
        ("identity", None),
        ("br, zstd", None),
        ("gzip;q=2", None),  # malformed: out of range
        ("gzip;q=high, deflate;q=0.1", DEFLATE),  # malformed: ignored
    ],
)
def test_accept_encoding_is_read_with_its_q_values(header: str | None, coding: str | None) -> None:
    assert negotiate(header) == coding


def without_accept_encoding(client: httpx.AsyncClient) -> httpx.AsyncClient:
    del client.headers["accept-encoding"]  # httpx sends one by default
    return client


async def raw_get(
    client: httpx.AsyncClient, url: str, accept_encoding: str | None
) -> tuple[httpx.Response, bytes]:
    """The response and its body as it came, not decoded."""
    headers = {} if accept_encoding is None else {"Accept-Encoding": accept_encoding}
    async with client.stream("GET", url, headers=headers) as response:
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    return response, body


def decode(coding: str, body: bytes) -> bytes:
    return gzip.decompress(body) if coding == GZIP else zlib.decompress(body)


async def finished_answer(client: httpx.AsyncClient, content: str) -> dict[str, Any]:
    cid = await new_conversation(client)
    started = await send(client, cid, content)
    response = await client.get(started["events_url"])  # read to its end: the answer is over
    assert sse.parse(response.text)[-1].event == "done"
    return started


@pytest.mark.parametrize("stream", ["json", "browser"])
async def test_streams_are_compressed_only_when_asked(
    client: httpx.AsyncClient, stream: str
) -> None:
    started = await finished_answer(client, "Hello **world**,\n\n- one\n- two\n\n" * 20)
    url = (
        started["events_url"]
        if stream == "json"
        else f"/generations/{started['generation_id']}/stream"
    )
    plain, today = await raw_get(without_accept_encoding(client), url, None)
    assert plain.status_code == 200
    assert "content-encoding" not in plain.headers and "vary" not in plain.headers
    assert plain.headers["cache-control"] == "no-cache, no-transform"
    assert sse.parse(today.decode())[-1].event in ("done", "end")

    for header, coding in [
        ("gzip", GZIP),
        ("gzip, deflate, br, zstd", GZIP),
        ("deflate", DEFLATE),
        ("gzip;q=0, deflate", DEFLATE),
        ("gzip;q=0", None),
        ("identity", None),
    ]:
        response, body = await raw_get(client, url, header)
        assert response.status_code == 200
        assert response.headers.get("content-encoding") == coding, header
        assert response.headers.get("vary") == ("Accept-Encoding" if coding else None)
        assert response.headers["cache-control"] == "no-cache, no-transform"
        assert response.headers["content-security-policy"] == "default-src 'none'"
        assert (decode(coding, body) if coding else body) == today, header
        if coding:
            assert len(body) < len(today)


async def test_pages_and_static_files_are_compressed(client: httpx.AsyncClient) -> None:
    page, body = await raw_get(client, "/", "gzip")
    assert page.headers["content-encoding"] == "gzip"
    assert page.headers["vary"] == "HX-Request, Accept-Encoding"
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert int(page.headers["content-length"]) == len(body)
    assert b"<textarea" in gzip.decompress(body)
    plain, html = await raw_get(client, "/", "gzip;q=0")
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "HX-Request, Accept-Encoding"
    assert html == gzip.decompress(body)
    _, deflated = await raw_get(client, "/", "deflate")
    assert zlib.decompress(deflated) == html

    htmx = STATIC / "vendor" / "htmx-2.0.11.min.js"
    for path in (htmx, STATIC / "app.css", STATIC / "app.js"):
        url = f"/static/{path.relative_to(STATIC)}"
        response, body = await raw_get(client, url, "gzip, deflate, br")
        assert response.headers["content-encoding"] == "gzip", url
        assert response.headers["etag"].startswith('W/"'), url  # another representation
        assert gzip.decompress(body) == path.read_bytes()
    response, body = await raw_get(client, "/static/vendor/htmx-2.0.11.min.js", "gzip")
    assert len(body) < htmx.stat().st_size / 2
    head = await client.head("/static/app.css", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in head.headers
    assert int(head.headers["content-length"]) == (STATIC / "app.css").stat().st_size
    small, body = await raw_get(client, "/api/conversations", "gzip")  # under a packet
    assert "content-encoding" not in small.headers
    assert body == b"[]"


async def test_fragments_are_compressed(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/send",
        data={"content": "Hello there " * 20, "conversation_id": ""},
        headers={"HX-Request": "true", "Accept-Encoding": "gzip"},
    )
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert "hx-swap-oob" in response.text  # httpx decoded it


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """The app under uvicorn on a loopback port: real sockets, real chunked HTTP/1.1."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:

        def started() -> bool:
            assert not task.done(), "uvicorn did not start"
            return server.started

        await eventually(started)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def read_live(
    client: httpx.AsyncClient, url: str
) -> tuple[list[tuple[float, sse.Event]], bytes]:
    """Read a gzip stream as it comes: each read is decompressed on arrival and must
    complete the events it carries (a sync flush per frame). Returns each event with
    the time it decoded, and the decoded stream."""
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    parser = sse.Parser()
    decoded = b""
    timed: list[tuple[float, sse.Event]] = []
    async with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as response:
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "gzip"
        async for chunk in response.aiter_raw():
            at = time.monotonic()
            data = decoder.decompress(chunk)
            if not data:  # the gzip trailer
                continue
            decoded += data
            assert data.endswith(b"\n\n"), f"a frame did not decode whole: {data!r}"
            for line in data.decode().split("\n"):
                event = parser.line(line)
                if event is not None:
                    timed.append((at, event))
    assert decoder.eof, "the gzip stream was not closed"
    return timed, decoded


async def test_a_compressed_stream_delivers_each_frame_when_it_is_written(
    make_settings: Any,
) -> None:
    words = [f"word{i:02d}" for i in range(WORDS)]
    async with (
        running_app(make_settings(echo_delay_ms=int(DELAY * 1000))) as app,
        served(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        cid = await new_conversation(client)
        posted_at = time.monotonic()
        started = await send(client, cid, " ".join(words))
        (json_events, json_bytes), (frames, _) = await asyncio.gather(
            read_live(client, started["events_url"]),
            read_live(client, f"/generations/{started['generation_id']}/stream"),
        )
        _, today = await raw_get(without_accept_encoding(client), started["events_url"], None)

    for name, timed in (("json", json_events), ("browser", frames)):
        assert timed[-1][1].event in ("done", "end"), name
        for index, word in enumerate(words):
            due = posted_at + index * DELAY
            shown = next(at for at, event in timed if word in event.data)
            assert shown <= due + LATE, f"{name}: {word} decoded {shown - due:.2f} s after due"
        first = next(at for at, event in timed if words[0] in event.data)
        assert timed[-1][0] - first >= (WORDS - 3) * DELAY, f"{name}: words came in a burst"
    assert json_bytes == today  # the same events, byte for byte, as an uncompressed read
