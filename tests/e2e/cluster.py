"""Helpers for the end-to-end tests: real `hxchat serve` processes on shared services.

Why real processes: the claims of the scale-out issue (any request on any worker,
a worker that dies, Redis or PostgreSQL going away) are about processes, sockets and
clocks, which an in-process test cannot show. Every module gets a fresh PostgreSQL
database (random name, dropped at the end) and a Redis logical database of its own
(flushed before and after), so modules never see each other's rows or keys.

A `Session` is one user: one session cookie, sent explicitly to every worker (cookies
belong to a host, not a worker, so a browser would send it to all of them; httpx's own
jar is emptied after each answer so that only the explicit header counts).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import redis
from sqlalchemy import Row, TextClause, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests import sse
from tests.helpers import POSTGRES_URL, REDIS_URL, eventually, need
from tests.servers import (
    Server,
    run_hxchat,
    start_server,
)

COOKIE = "hxchat_session"
FINAL = ("done", "error")


def words(count: int, prefix: str = "w") -> str:
    """`count` distinct words (`w1 w2 …`) that the echo model says back one by one."""
    return " ".join(f"{prefix}{i}" for i in range(1, count + 1))


# -- services ----------------------------------------------------------------------


def redis_url(db: int) -> str:
    """The test Redis server's URL on logical database `db`."""
    parts = urlsplit(need(REDIS_URL, "HXCHAT_TEST_REDIS_URL"))
    return urlunsplit(parts._replace(path=f"/{db}"))


@contextlib.contextmanager
def redis_database(db: int) -> Iterator[str]:
    """Redis logical database `db`, empty before and after; yields its URL."""
    url = redis_url(db)
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
        yield url
    finally:
        client.flushdb()
        client.close()


async def _admin(statement: str) -> None:
    admin_url = need(POSTGRES_URL, "HXCHAT_TEST_POSTGRES_URL")
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def _run_aside(statement: str) -> None:
    # In a thread of its own: the caller's thread may be running an event loop
    # (Playwright's sync API runs one).
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _admin(statement)).result(timeout=60)


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards; yields its hxchat URL."""
    admin_url = need(POSTGRES_URL, "HXCHAT_TEST_POSTGRES_URL")
    name = f"hxchat_e2e_{uuid.uuid4().hex[:12]}"
    _run_aside(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        _run_aside(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# These tests send many answers as one owner to exercise the workers, not the per-owner
# limits (tests/test_limits.py and test_accounts_workers.py have those).
MANY_ANSWERS = {"HXCHAT_RATE_LIMIT": "1000/minute", "HXCHAT_MAX_ANSWERS_PER_USER": "100"}


@contextlib.contextmanager
def shared_environment(
    workdir: Path, redis_db: int, echo_delay_ms: int
) -> Iterator[dict[str, str]]:
    """What workers of one deployment share: a new PostgreSQL database, upgraded by
    `hxchat db upgrade`, and an empty Redis database; yields their settings."""
    with postgres_database() as database_url, redis_database(redis_db) as redis_url:
        env = {
            "HXCHAT_DATABASE_URL": database_url,
            "HXCHAT_REDIS_URL": redis_url,
            "HXCHAT_ECHO_DELAY_MS": str(echo_delay_ms),
            **MANY_ANSWERS,
        }
        upgraded = run_hxchat(workdir, env, "db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        assert "up to date" in upgraded.stdout
        yield env


async def query(database_url: str, statement: TextClause, **params: Any) -> list[Row[Any]]:
    """Rows of one query on the database (for what no API shows, e.g. worker ids)."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return list(await conn.execute(statement, params))
    finally:
        await engine.dispose()


# -- processes ---------------------------------------------------------------------


@contextlib.contextmanager
def workers(workdir: Path, envs: list[dict[str, str]]) -> Iterator[list[Server]]:
    """One `hxchat serve` per environment, started together, all ready; stopped after."""
    servers: list[Server] = []
    try:
        for env in envs:
            servers.append(start_server(workdir, env))
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


# -- one user ----------------------------------------------------------------------


@dataclass
class Received:
    """What a reader of an event stream got, and when."""

    status: int = 0
    events: list[sse.Event] = field(default_factory=list)
    timed_out: bool = False  # the stream was still open when the reader gave up

    @property
    def deltas(self) -> list[sse.Event]:
        return [e for e in self.events if e.event == "delta"]

    @property
    def text(self) -> str:
        return "".join(e.json()["text"] for e in self.deltas)

    @property
    def final(self) -> sse.Event | None:
        last = self.events[-1] if self.events else None
        return last if last is not None and last.event in FINAL else None


async def parse_stream(lines: AsyncIterator[str]) -> AsyncIterator[sse.Event]:
    """Events as they arrive, after the WHATWG rules (ids carry over, comments skipped)."""
    parser = sse.Parser()
    async for line in lines:
        event = parser.line(line)
        if event is not None:
            yield event


class Session:
    """One user of the cluster: its cookie goes explicitly with every request."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.cookie: str | None = None

    async def request(
        self, method: str, worker: Server, path: str, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        response = await self.client.request(method, worker.url + path, headers=headers, **kwargs)
        if self.cookie is None and COOKIE in response.cookies:
            self.cookie = f"{COOKIE}={response.cookies[COOKIE]}"
        self.client.cookies.clear()
        return response

    async def new_conversation(self, worker: Server) -> str:
        response = await self.request("POST", worker, "/api/conversations")
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def send(self, worker: Server, conversation_id: str, content: str) -> dict[str, Any]:
        response = await self.request(
            "POST",
            worker,
            f"/api/conversations/{conversation_id}/messages",
            json={"content": content},
        )
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body

    async def conversation(self, worker: Server, conversation_id: str) -> dict[str, Any]:
        response = await self.request("GET", worker, f"/api/conversations/{conversation_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def answer(self, worker: Server, conversation_id: str) -> dict[str, Any]:
        """The conversation's last assistant message, as stored."""
        messages = (await self.conversation(worker, conversation_id))["messages"]
        found: dict[str, Any] = [m for m in messages if m["role"] == "assistant"][-1]
        return found

    async def settled_answer(
        self, worker: Server, conversation_id: str, within: float
    ) -> tuple[dict[str, Any], float]:
        """The last answer once it is no longer `streaming` (and how long that took);
        fails when it still is after `within` seconds."""
        began = time.monotonic()

        async def settled() -> dict[str, Any]:
            answer = await self.answer(worker, conversation_id)
            assert answer["status"] != "streaming", f"still streaming: {answer}"
            return answer

        answer = await eventually(settled, within=within, interval=0.25)
        return answer, time.monotonic() - began

    async def read(
        self,
        worker: Server,
        url: str,
        last_event_id: str | None = None,
        *,
        stop_after: int | None = None,
        within: float = 30,
    ) -> Received:
        """Read an event stream to its end (or `stop_after` deltas, then hang up; or
        give up after `within` seconds)."""
        headers = {"Accept": "text/event-stream"}
        if self.cookie:
            headers["Cookie"] = self.cookie
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        received = Received()
        try:
            async with (
                asyncio.timeout(within),
                self.client.stream("GET", worker.url + url, headers=headers) as response,
            ):
                received.status = response.status_code
                async for event in parse_stream(response.aiter_lines()):
                    received.events.append(event)
                    if event.event in FINAL:
                        break
                    if stop_after is not None and len(received.deltas) >= stop_after:
                        break
        except TimeoutError:
            received.timed_out = True  # then `final` is None: the caller's assert says so
        self.client.cookies.clear()
        return received


@contextlib.asynccontextmanager
async def session(keepalive: bool = True) -> AsyncIterator[Session]:
    """A new user with its own HTTP client; without `keepalive`, every request opens
    a new connection (which then goes to whichever worker process accepts it)."""
    limits = httpx.Limits(max_keepalive_connections=None if keepalive else 0)
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, connect=5), limits=limits) as client:
        yield Session(client)
