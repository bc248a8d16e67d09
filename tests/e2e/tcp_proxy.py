"""A TCP proxy on loopback that a test can cut and restore.

Why: to see what hxchat does when Redis or PostgreSQL go away, without touching the
servers that other tests share. A worker is pointed at the proxy instead of the real
server; `cut()` resets every connection through it and stops listening, so new
connections are refused exactly as by a server that is down; `restore()` listens
again on the same port, as the server coming back would.

The proxy runs on an event loop in a thread of its own (`LoopThread`), so sync and
async tests can drive it alike and it never depends on the test's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
CHUNK = 65_536


class LoopThread:
    """An asyncio event loop running in a daemon thread; `call` runs a coroutine on it."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        """Run `coro` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        """Stop the loop and its thread (after the owner closed what runs on it)."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes as they come until end of file, then half-close the other side."""
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target_host`:`target_port` until cut."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._runner = LoopThread(f"tcp-proxy-{target_port}")
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.restore()

    @property
    def is_cut(self) -> bool:
        return self._server is None

    def cut(self) -> None:
        """Reset every connection and refuse new ones, like a server that went away."""
        self._runner.call(self._cut())

    def restore(self) -> None:
        """Listen again (on the same port once it has one), like the server coming back."""
        self._runner.call(self._listen())

    def close(self) -> None:
        """Cut for good and stop the proxy's thread."""
        self.cut()
        self._runner.stop()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )
            self.port = int(self._server.sockets[0].getsockname()[1])

    async def _cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._connections):
            writer.transport.abort()  # a reset, as when the server's process dies
        self._connections.clear()
        if self._tasks:  # their pipes see the end of both connections and return
            await asyncio.wait(self._tasks, timeout=5)

    async def _accept(self, reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._connections.add(client)
        upstream: asyncio.StreamWriter | None = None
        try:
            upstream_reader, upstream = await asyncio.open_connection(*self.target)
            self._connections.add(upstream)
            await asyncio.gather(pipe(reader, upstream), pipe(upstream_reader, client))
        except (ConnectionError, OSError):
            pass
        finally:
            for writer in (client, upstream):
                if writer is not None:
                    self._connections.discard(writer)
                    writer.transport.abort()
            if task is not None:
                self._tasks.discard(task)
