"""A tiny authenticating reverse proxy on 127.0.0.1, as oauth2-proxy or Authelia in
front of hxchat's header mode: it drops whatever user header the client sent, names
the user it signed in (`Remote-User`, here simply the one the test chose) and appends
the client's address to X-Forwarded-For, as nginx's `$proxy_add_x_forwarded_for` does.
One request per connection; answers are copied as they arrive (`rr_proxy`)."""

from __future__ import annotations

import asyncio
import contextlib

from tests.e2e.rr_proxy import HEAD_LIMIT, _content_length
from tests.e2e.tcp_proxy import LoopThread, pipe

DROPPED = {"connection", "keep-alive", "proxy-connection", "upgrade", "te", "remote-user"}


class HeaderProxy:
    def __init__(self, backend: tuple[str, int], user: str) -> None:
        self.backend = backend
        self.user = user
        self._runner = LoopThread("header-proxy")
        self._server = self._runner.call(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._runner.call(self._close())
        self._runner.stop()

    async def _close(self) -> None:
        self._server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    def _rewrite(self, head: bytes, client: str) -> bytes:
        lines = head.decode("latin-1").split("\r\n")
        fields = [line for line in lines[1:] if line]
        kept, forwarded = [], client
        for field in fields:
            name, _, value = field.partition(":")
            if name.strip().lower() == "x-forwarded-for":
                forwarded = f"{value.strip()}, {client}"
            elif name.strip().lower() not in DROPPED:
                kept.append(field)
        kept += [
            f"Remote-User: {self.user}",
            f"X-Forwarded-For: {forwarded}",
            "X-Forwarded-Proto: https",
            "Connection: close",
        ]
        return ("\r\n".join([lines[0], *kept]) + "\r\n\r\n").encode("latin-1")

    async def _handle(self, reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        upstream: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > HEAD_LIMIT:
                return
            body = await reader.readexactly(_content_length(head))
            peer = client.get_extra_info("peername")[0]
            upstream_reader, upstream = await asyncio.open_connection(*self.backend)
            upstream.write(self._rewrite(head, peer) + body)
            await upstream.drain()
            await pipe(upstream_reader, client)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            for writer in (upstream, client):
                if writer is not None:
                    with contextlib.suppress(ConnectionError, OSError):
                        writer.close()
