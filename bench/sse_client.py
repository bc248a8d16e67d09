"""A minimal HTTP/1.1 + Server-Sent Events client for loopback load generation.

Why not httpx: with hundreds of streams at 50 events a second each, a general client
spends more CPU per event than the server, and the benchmark would measure itself.
This client is one `asyncio.Protocol` per connection: it timestamps every read as it
arrives, decodes `Content-Length` and chunked bodies, splits the SSE stream into
events and hands them to a callback. It counts the raw bytes read from the socket, so
a benchmark can report bytes on the wire beside the SSE payload bytes. It speaks only
what `hxchat serve` answers (no redirects, no TLS). A stream asked for with
`Accept-Encoding: gzip` (or deflate) is decompressed chunk by chunk as it arrives, and
the response also counts what the same stream would have cost on the wire without
compression (`plain_wire_bytes`: the same chunks, decoded, with their framing).
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

Clock = Callable[[], float]
now: Clock = time.perf_counter


@dataclass
class SseEvent:
    """One dispatched SSE event (comments are counted, not dispatched)."""

    event: str
    data: bytes  # the data lines joined with "\n", as the spec builds the data buffer
    id: str | None
    at: float  # when the read that completed it arrived


@dataclass
class Response:
    """A response head, and its body when it is not a stream."""

    status: int
    headers: dict[str, str]
    body: bytes = b""
    head_at: float = 0.0  # first byte of the response
    wire_bytes: int = 0  # bytes read for this response, head and framing included
    # Compressed streams: the wire bytes the same chunks would have taken uncompressed
    # (the head without its Content-Encoding line, each chunk decoded, with its framing).
    plain_wire_bytes: int = 0

    def cookie(self) -> str | None:
        """The `name=value` of the first Set-Cookie, if any."""
        raw = self.headers.get("set-cookie")
        return raw.split(";", 1)[0] if raw else None


_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}

# Called for each SSE event; return True when it is the final one.
OnEvent = Callable[[SseEvent], bool]


@dataclass
class _Pending:
    on_event: OnEvent | None
    future: asyncio.Future[Response]
    response: Response | None = None
    remaining: int = -1  # Content-Length still to read; -1 for chunked
    body: bytearray = field(default_factory=bytearray)
    sse: bytearray = field(default_factory=bytearray)
    started: bool = False
    decoder: zlib._Decompress | None = None


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.pending: _Pending | None = None
        self.lost: BaseException | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost = exc or ConnectionResetError("the server closed the connection")
        pending, self.pending = self.pending, None
        if pending and not pending.future.done():
            pending.future.set_exception(self.lost)

    def data_received(self, data: bytes) -> None:
        at = now()
        pending = self.pending
        if pending is None:
            return  # bytes after a stream we stopped reading: ignore
        if not pending.started:
            pending.started = True
            pending.response = Response(0, {}, head_at=at)
        assert pending.response is not None
        pending.response.wire_bytes += len(data)
        self.buffer += data
        try:
            self._parse(pending, at)
        except ValueError as exc:
            if not pending.future.done():
                pending.future.set_exception(exc)
            self.pending = None
            if self.transport:
                self.transport.close()

    def _parse(self, p: _Pending, at: float) -> None:
        response = p.response
        assert response is not None
        buf = self.buffer
        if response.status == 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).decode("latin-1").split("\r\n")
            del buf[: end + 4]
            response.status = int(head[0].split(" ", 2)[1])
            response.plain_wire_bytes = end + 4
            for line in head[1:]:
                name, _, value = line.partition(":")
                response.headers.setdefault(name.strip().lower(), value.strip())
                if name.strip().lower() == "content-encoding":
                    wbits = _WBITS.get(value.strip().lower())
                    if wbits is None:
                        raise ValueError(f"unknown Content-Encoding {value!r}")
                    p.decoder = zlib.decompressobj(wbits)
                    response.plain_wire_bytes -= len(line) + 2
            if response.status in (204, 304):
                self._finish(p)
                return
            if response.headers.get("transfer-encoding", "").lower() == "chunked":
                p.remaining = -1
            else:
                p.remaining = int(response.headers.get("content-length", "0"))
        if p.remaining >= 0:
            if len(buf) >= p.remaining:
                p.body += buf[: p.remaining]
                del buf[: p.remaining]
                self._finish(p)
            return
        while self.pending is p:
            line_end = buf.find(b"\r\n")
            if line_end < 0:
                return
            size = int(bytes(buf[:line_end]).split(b";", 1)[0], 16)
            if len(buf) < line_end + 2 + size + 2:
                return
            chunk = bytes(buf[line_end + 2 : line_end + 2 + size])
            del buf[: line_end + 2 + size + 2]
            if size == 0:
                response.plain_wire_bytes += 5  # 0\r\n\r\n
                self._finish(p)
                return
            if p.decoder is not None:
                chunk = p.decoder.decompress(chunk)
                if not chunk:  # the gzip trailer: nothing uncompressed would send
                    continue
            response.plain_wire_bytes += len(f"{len(chunk):x}") + 4 + len(chunk)
            if p.on_event is None:
                p.body += chunk
            else:
                self._events(p, chunk, at)

    def _events(self, p: _Pending, chunk: bytes, at: float) -> None:
        sse = p.sse
        sse += chunk
        while self.pending is p:
            end, sep = sse.find(b"\r\n\r\n"), 4
            if end < 0:
                end, sep = sse.find(b"\n\n"), 2
                if end < 0:
                    return
            block = bytes(sse[:end])
            del sse[: end + sep]
            event = _parse_event(block, at)
            if event is not None and p.on_event is not None and p.on_event(event):
                self._finish(p)
                if self.transport:  # we have what we came for; do not drain the rest
                    self.transport.close()

    def _finish(self, p: _Pending) -> None:
        self.pending = None
        assert p.response is not None
        p.response.body = bytes(p.body)
        if not p.future.done():
            p.future.set_result(p.response)


def _parse_event(block: bytes, at: float) -> SseEvent | None:
    lines = block.split(b"\r\n") if b"\r\n" in block else block.split(b"\n")
    name, event_id, data = "message", None, []
    for line in lines:
        if not line or line.startswith(b":"):
            continue
        key, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if key == b"data":
            data.append(value)
        elif key == b"event":
            name = value.decode()
        elif key == b"id":
            event_id = value.decode()
    if not data:
        return None
    return SseEvent(name, b"\n".join(data), event_id, at)


class Connection:
    """One keep-alive connection to a loopback server; one request at a time."""

    def __init__(self, host: str, port: int, protocol: _Protocol) -> None:
        self.host, self.port, self._protocol = host, port, protocol

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        """Connect; raises OSError when the server refuses."""
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(_Protocol, host, port)
        return cls(host, port, protocol)

    @property
    def closed(self) -> bool:
        return self._protocol.closed

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self._protocol.transport is not None:
            self._protocol.transport.close()

    def _send(
        self, method: str, path: str, headers: dict[str, str], body: bytes, on_event: OnEvent | None
    ) -> asyncio.Future[Response]:
        protocol = self._protocol
        if protocol.closed or protocol.transport is None:
            raise ConnectionResetError("the connection is closed")
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        protocol.buffer.clear()
        protocol.pending = _Pending(on_event, future)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        protocol.transport.write(head + body)
        return future

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Response:
        """A plain request; the whole body is read."""
        return await self._send(method, path, headers or {}, body, None)

    async def stream(
        self, path: str, on_event: OnEvent, headers: dict[str, str] | None = None
    ) -> Response:
        """GET an event stream, calling `on_event` per event, until it returns True
        (the connection is then closed) or the stream ends. Returns the response head."""
        all_headers = {"Accept": "text/event-stream", **(headers or {})}
        return await self._send("GET", path, all_headers, b"", on_event)

    def head_of_stream(self) -> Response | None:
        """The head of the response being read, once its first byte arrived."""
        pending = self._protocol.pending
        return pending.response if pending else None
