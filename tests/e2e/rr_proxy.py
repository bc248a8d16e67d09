"""A tiny round-robin HTTP reverse proxy on loopback, for the browser test.

Why: the issue asks that the page works "through a round-robin proxy in front of two
workers", with no sticky sessions. Each client connection carries one request (the
answer says `Connection: close`), and each goes to the next worker in turn, so the
page, its form posts and every (re)connection of its event stream alternate between
workers. Answers are copied through as their bytes arrive, never buffered, as nginx
does with `proxy_buffering off`. The `Host` header is passed on unchanged (nginx's
`proxy_set_header Host $http_host`), since hxchat compares `Origin` with `Host`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Sequence

from tests.e2e.tcp_proxy import LoopThread, pipe

HEAD_LIMIT = 65_536
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "upgrade", "te"}


def _rewrite(head: bytes, extra: Sequence[tuple[str, str]]) -> bytes:
    """The head with hop-by-hop headers dropped, `Connection: close` and `extra` added."""
    lines = head.decode("latin-1").split("\r\n")
    start, fields = lines[0], [line for line in lines[1:] if line]
    kept = [f for f in fields if f.split(":", 1)[0].strip().lower() not in HOP_BY_HOP]
    kept += [f"{name}: {value}" for name, value in extra]
    kept.append("Connection: close")
    return ("\r\n".join([start, *kept]) + "\r\n\r\n").encode("latin-1")


def _content_length(head: bytes) -> int:
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return int(value.strip())
    return 0


class RoundRobinProxy:
    """HTTP/1.1 on 127.0.0.1:`port`, each request sent to the next of `backends`."""

    def __init__(self, backends: Sequence[tuple[str, int]]) -> None:
        self._next = itertools.cycle(backends)
        self.served: list[tuple[tuple[str, int], str]] = []  # (backend, request line)
        self._runner = LoopThread("rr-proxy")
        self._server = self._runner.call(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop listening and stop the proxy's thread."""
        self._runner.call(self._close())
        self._runner.stop()

    async def _close(self) -> None:
        self._server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    async def _handle(self, reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        upstream: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > HEAD_LIMIT:
                return
            body = await reader.readexactly(_content_length(head))
            backend = next(self._next)
            self.served.append((backend, head.split(b"\r\n", 1)[0].decode("latin-1")))
            upstream_reader, upstream = await asyncio.open_connection(*backend)
            upstream.write(_rewrite(head, [("X-Forwarded-Proto", "http")]) + body)
            await upstream.drain()
            answer_head = await upstream_reader.readuntil(b"\r\n\r\n")
            client.write(_rewrite(answer_head, []))
            await client.drain()
            # Copy the answer as it comes; stop when either side closes (a browser
            # closing its EventSource must end the request on the worker too).
            copy = asyncio.create_task(pipe(upstream_reader, client))
            hangup = asyncio.create_task(reader.read(1))
            await asyncio.wait({copy, hangup}, return_when=asyncio.FIRST_COMPLETED)
            for task in (copy, hangup):
                task.cancel()
            await asyncio.gather(copy, hangup, return_exceptions=True)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            for writer in (upstream, client):
                if writer is not None:
                    with contextlib.suppress(ConnectionError, OSError):
                        writer.close()
