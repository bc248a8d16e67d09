"""Server-Sent Events on the wire: the response and the encoding, kept lean.

An answer streams as many small events per second to every reader, so what each event
costs is what the server can carry (bench/README.md). Starlette's `StreamingResponse`
sends each chunk with one `send`; this adds only what an event stream needs:

- the proxy-safe headers (`Cache-Control: no-cache, no-transform`, `X-Accel-Buffering:
  no`), `text/event-stream`, and the narrowest Content-Security-Policy;
- a time limit on each `send`: a client that accepts nothing for `SEND_TIMEOUT`
  seconds is dropped instead of holding the stream forever. One timer per response
  (`_SendWatch`) checks, every `SEND_TIMEOUT`, the send under way, instead of an
  `asyncio.timeout` per send (more Python work, and on CPython 3.11 three `getpid()`
  system calls: `hxchat/loops.py`);
- the active-streams gauge;
- compression, when the client's `Accept-Encoding` accepts gzip or deflate
  (`web/compression.py`): one compressor per response, flushed after every chunk, so
  each frame leaves whole, when it is written. `Content-Encoding` and `Vary:
  Accept-Encoding` say so; `no-transform` still tells proxies to leave the stream alone.
  A client that asks for none gets the chunks and the headers as they were before
  compression existed (no `Vary`: a stream is `no-cache`, no cache keeps it anyway).

Keep-alive pings are the streams' own business (`broker/follow.py` tells a stream when
it has been quiet for `PING_SECONDS`), so a connection needs no timer task of its own.

Events are encoded by hand (`event`): `data` lines split on every line ending, fields
separated by "\\n" only (the spec allows "\\r\\n", "\\r" and "\\n"; one byte is enough).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator

from starlette.datastructures import Headers
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from hxchat.metrics import Metrics
from hxchat.web.compression import FrameCompressor, negotiate

SEND_TIMEOUT = 30.0  # a client that accepts nothing for this long is dropped
HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
    # An event stream is no document: it needs no policy beyond "nothing at all", which
    # is a quarter of the page's in bytes, sent with every stream (re)connection.
    "Content-Security-Policy": "default-src 'none'",
}
PING = b": ping\n\n"

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def compact_html(html: str) -> str:
    """`html` with the line breaks between tags made spaces, outside `<pre>`: the same
    document (whitespace between tags is one space or nothing, wherever it is outside
    preformatted text), and on the wire each line break would cost a `data: ` line."""
    if "\n" not in html:
        return html
    return _BETWEEN_TAGS.sub(_keep_pre, html)


def _keep_pre(match: re.Match[str]) -> str:
    return match.group(1) or "> "


_BETWEEN_TAGS = re.compile(r"(<pre[\s>][\s\S]*?</pre>)|>\n+(?=<)")


def event(data: str, kind: str | None = None, event_id: str | None = None) -> bytes:
    """One event: `id`, `event` and `data` fields, a `data` line per line of `data`."""
    head = ""
    if event_id is not None:
        head = f"id: {event_id}\n"
    if kind is not None:
        head += f"event: {kind}\n"
    if "\n" in data or "\r" in data:
        data = _LINE_BREAK.sub("\ndata: ", data)
    return f"{head}data: {data}\n\n".encode()


class EventStreamResponse(StreamingResponse):
    """A `text/event-stream` response of pre-encoded chunks (see the module)."""

    media_type = "text/event-stream"

    def __init__(self, chunks: AsyncGenerator[bytes, None], metrics: Metrics, kind: str) -> None:
        super().__init__(chunks, headers=HEADERS)
        self._chunks = chunks
        self._gauge = metrics.active_streams.labels(kind=kind)
        self._compressor: FrameCompressor | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        coding = negotiate(Headers(scope=scope).get("accept-encoding"))
        if coding is not None:
            self._compressor = FrameCompressor(coding)
            self.headers["Content-Encoding"] = coding
            self.headers.add_vary_header("Accept-Encoding")
        await super().__call__(scope, receive, send)

    async def stream_response(self, send: Send) -> None:
        compressor = self._compressor
        loop = asyncio.get_running_loop()
        watch = _SendWatch(loop)
        self._gauge.inc()
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            async for chunk in self._chunks:
                body = chunk if compressor is None else compressor.frame(chunk)
                watch.since = loop.time()
                await send({"type": "http.response.body", "body": body, "more_body": True})
                watch.since = None
            end = b"" if compressor is None else compressor.end()
            await send({"type": "http.response.body", "body": end, "more_body": False})
        except asyncio.CancelledError:
            if watch.expired and watch.task.uncancel() == 0:
                raise TimeoutError from None  # as `asyncio.timeout` would
            raise
        finally:
            watch.stop()
            self._gauge.dec()
            await self._chunks.aclose()  # now, not whenever it is collected


class _SendWatch:
    """Cancels its task once one send has been under way for `SEND_TIMEOUT` seconds:
    one timer per response, which fires every `SEND_TIMEOUT` at most."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        task = asyncio.current_task()
        assert task is not None  # a response is always sent from a task
        self.task = task
        self.since: float | None = None  # when the send under way began
        self.expired = False
        self._loop = loop
        self._timer = loop.call_later(SEND_TIMEOUT, self._check)

    def _check(self) -> None:
        now, since = self._loop.time(), self.since
        if since is not None and now - since >= SEND_TIMEOUT - 0.005:  # timers run early by 1 ms
            self.expired = True
            self.task.cancel()
            return
        self._timer = self._loop.call_at(
            (now if since is None else since) + SEND_TIMEOUT, self._check
        )

    def stop(self) -> None:
        self._timer.cancel()
