"""Tiny HTTP reverse proxies on loopback, in front of real `hxchat serve` workers.

- `RoundRobinProxy`, for the browser test: the issue asks that the page works "through
  a round-robin proxy in front of two workers", with no sticky sessions; each request
  goes to the next worker in turn, so the page, its form posts and every (re)connection
  of its event stream alternate between workers.
- `HeaderProxy`, as oauth2-proxy or Authelia in front of hxchat's header mode: it drops
  whatever user header the client sent, names the user it signed in (`Remote-User`,
  here simply the one the test chose), appends the client's address to
  `X-Forwarded-For` as nginx's `$proxy_add_x_forwarded_for` does, and says
  `X-Forwarded-Proto: https`.

Both carry one request per client connection (the answer says `Connection: close`) and
copy answers through as their bytes arrive, never buffered, as nginx does with
`proxy_buffering off`; a client that hangs up ends the request on the worker too. The
`Host` header is passed on unchanged (nginx's `proxy_set_header Host $http_host`), since
hxchat compares `Origin` with `Host`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Sequence

from tests.e2e.tcp_proxy import LoopThread, pipe

HEAD_LIMIT = 65_536
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "upgrade", "te"})
Address = tuple[str, int]


def _rewrite(
    head: bytes, extra: Sequence[tuple[str, str]], dropped: frozenset[str] = HOP_BY_HOP
) -> bytes:
    """The head without the `dropped` headers, with `extra` and `Connection: close`."""
    lines = head.decode("latin-1").split("\r\n")
    start, fields = lines[0], [line for line in lines[1:] if line]
    kept = [f for f in fields if f.split(":", 1)[0].strip().lower() not in dropped]
    kept += [f"{name}: {value}" for name, value in extra]
    kept.append("Connection: close")
    return ("\r\n".join([start, *kept]) + "\r\n\r\n").encode("latin-1")


def _header(head: bytes, wanted: str) -> str | None:
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == wanted:
            return value.strip()
    return None


class _Proxy:
    """HTTP/1.1 on 127.0.0.1:`port`, one request per connection, in its own thread."""

    def __init__(self, name: str) -> None:
        self._runner = LoopThread(name)
        self._server = self._runner.call(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop listening and stop the proxy's thread."""
        self._runner.call(self._close())
        self._runner.stop()

    def _route(self, head: bytes, peer: str) -> tuple[Address, bytes]:
        """Where a request goes, and its head as sent there."""
        raise NotImplementedError

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
            body = await reader.readexactly(int(_header(head, "content-length") or 0))
            backend, sent = self._route(head, client.get_extra_info("peername")[0])
            upstream_reader, upstream = await asyncio.open_connection(*backend)
            upstream.write(sent + body)
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


class RoundRobinProxy(_Proxy):
    """Each request to the next of `backends`."""

    def __init__(self, backends: Sequence[Address]) -> None:
        self._next = itertools.cycle(backends)
        self.served: list[tuple[Address, str]] = []  # (backend, request line)
        super().__init__("rr-proxy")

    def _route(self, head: bytes, peer: str) -> tuple[Address, bytes]:
        backend = next(self._next)
        self.served.append((backend, head.split(b"\r\n", 1)[0].decode("latin-1")))
        return backend, _rewrite(head, [("X-Forwarded-Proto", "http")])


class HeaderProxy(_Proxy):
    """Every request to `backend`, as signed-in `user`."""

    DROPPED = HOP_BY_HOP | {"remote-user", "x-forwarded-for"}

    def __init__(self, backend: Address, user: str) -> None:
        self.backend = backend
        self.user = user
        super().__init__("header-proxy")

    def _route(self, head: bytes, peer: str) -> tuple[Address, bytes]:
        before = _header(head, "x-forwarded-for")
        forwarded = f"{before}, {peer}" if before else peer
        extra = [
            ("Remote-User", self.user),
            ("X-Forwarded-For", forwarded),
            ("X-Forwarded-Proto", "https"),
        ]
        return self.backend, _rewrite(head, extra, self.DROPPED)
