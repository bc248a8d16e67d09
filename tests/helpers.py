"""What many test modules share: the services a test needs (or a skip), an app to talk
to and the JSON API's calls, a scripted model, fault injection on Redis, and
`eventually` for what comes true a moment later.

Test modules import from here (or from the other helper modules: `sse`, `html_tree`,
`servers`, the `scripted_*` servers), never from one another or from a conftest.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast, overload
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from hxchat.app import create_app
from hxchat.broker.base import EventLog
from hxchat.config import Settings
from hxchat.domain import AgentEvent, Role, TextDelta, Turn, Usage
from hxchat.errors import ProviderError
from hxchat.providers.base import ChatModel
from hxchat.store.migrate import upgrade
from tests import html_tree, sse

T = TypeVar("T")

# -- services: a real server when the environment names one, else a skip ----------------

POSTGRES_URL = os.environ.get("HXCHAT_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("HXCHAT_TEST_REDIS_URL")
REQUIRE_SERVICES = os.environ.get("HXCHAT_TEST_REQUIRE_SERVICES") == "1"
CHROMIUM = os.environ.get("HXCHAT_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def need(url: str | None, variable: str) -> str:
    """The service URL, or a skip (a failure on CI, where the services must run)."""
    if url:
        return url
    if REQUIRE_SERVICES:
        pytest.fail(f"{variable} is not set, but HXCHAT_TEST_REQUIRE_SERVICES=1")
    pytest.skip(f"{variable} is not set: this test needs a real server")


REDIS_DB = "14"  # the Redis database of the tests that run an app on Redis


def redis_test_url() -> str:
    """The test Redis, in the database of its own that these tests use."""
    return urlunsplit(
        urlsplit(need(REDIS_URL, "HXCHAT_TEST_REDIS_URL"))._replace(path=f"/{REDIS_DB}")
    )


def on_redis(make_settings: Callable[..., Settings], **overrides: Any) -> FastAPI:
    """The app on the test Redis (its own database), with a model when one is given."""
    model = overrides.pop("model", None)
    return create_app(make_settings(redis_url=redis_test_url(), **overrides), model=model)


def require_postgres() -> str:
    """The PostgreSQL server's URL, or a skip (a failure on CI, where it must run)."""
    return need(POSTGRES_URL, "HXCHAT_TEST_POSTGRES_URL")


def require_chromium() -> str:
    """The system Chromium for browser tests (`playwright install` is not used), or a
    skip (a failure when the CI asks for every service)."""
    if Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    reason = f"no Chromium at {CHROMIUM} (set HXCHAT_TEST_CHROMIUM)"
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason}, but HXCHAT_TEST_REQUIRE_SERVICES=1")
    pytest.skip(reason)


@asynccontextmanager
async def fresh_postgres_database(admin_url: str) -> AsyncIterator[str]:
    """A new, empty database on the server of `admin_url`, dropped afterwards."""
    name = f"hxchat_test_{uuid.uuid4().hex[:16]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@contextmanager
def redis_cut_off(monkeypatch: pytest.MonkeyPatch, where: str) -> Iterator[None]:
    """Fault injection on hxchat's connections (the named ones; a test's own admin
    client is spared): every command is lost on its way to Redis ("request"), or Redis
    runs it and the reply is lost ("reply"), as when a network cuts at a bad moment."""
    send, read = AbstractConnection.send_packed_command, AbstractConnection.read_response

    async def request_lost(self: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
        if self.client_name is None:
            return await send(self, *args, **kwargs)
        raise RedisConnectionError("the request was lost (injected)")

    async def reply_lost(self: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
        reply = await read(self, *args, **kwargs)
        if self.client_name is None:
            return reply
        raise RedisConnectionError("the reply was lost (injected)")

    if where == "request":
        monkeypatch.setattr(AbstractConnection, "send_packed_command", request_lost)
    else:
        monkeypatch.setattr(AbstractConnection, "read_response", reply_lost)
    try:
        yield
    finally:
        monkeypatch.setattr(AbstractConnection, "send_packed_command", send)
        monkeypatch.setattr(AbstractConnection, "read_response", read)


# -- waiting for what happens a moment later ---------------------------------------------


def _failure(check: Callable[..., object], within: float, last: AssertionError) -> str:
    name = getattr(check, "__qualname__", repr(check))
    return f"{name} still did not hold after {within:g} s; the last check said: {last}"


@overload
async def eventually(
    check: Callable[[], Awaitable[T]], *, within: float = 10.0, interval: float = 0.02
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T], *, within: float = 10.0, interval: float = 0.02
) -> T: ...


async def eventually(
    check: Callable[[], Awaitable[T] | T], *, within: float = 10.0, interval: float = 0.02
) -> T:
    """Call `check` (a function or a coroutine function) every `interval` seconds until
    it holds: it raises no AssertionError and does not return False. Returns what it
    returned; after `within` seconds, fails with the last assertion's message."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            outcome = check()
            result = cast("T", await outcome if inspect.isawaitable(outcome) else outcome)
            if result is not False:
                return result
            last = AssertionError("it returned False")
        except AssertionError as error:
            last = error
        if loop.time() >= deadline:
            raise AssertionError(_failure(check, within, last)) from last
        await asyncio.sleep(interval)


def eventually_sync(
    check: Callable[[], T],
    *,
    within: float = 10.0,
    interval: float = 0.02,
    pause: Callable[[float], None] = time.sleep,
) -> T:
    """`eventually` for code without an event loop; `pause` waits between checks (a
    Playwright page's `wait_for_timeout` lets the page's events in meanwhile)."""
    deadline = time.monotonic() + within
    while True:
        try:
            result = check()
            if result is not False:
                return result
            last = AssertionError("it returned False")
        except AssertionError as error:
            last = error
        if time.monotonic() >= deadline:
            raise AssertionError(_failure(check, within, last)) from last
        pause(interval)


# -- an app and its JSON API ---------------------------------------------------------


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """An app with its lifespan running: store, event log, model, runner."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def app_on(
    make_settings: Callable[..., Settings], database_url: str, **overrides: Any
) -> AsyncIterator[FastAPI]:
    """`running_app` on `database_url`, brought to the newest schema first (PostgreSQL
    is never upgraded by the app itself)."""
    await upgrade(database_url)
    async with running_app(make_settings(database_url=database_url, **overrides)) as app:
        yield app


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=30
    )


async def new_conversation(client: httpx.AsyncClient) -> str:
    response = await client.post("/api/conversations")
    assert response.status_code == 201
    return str(response.json()["id"])


async def send(client: httpx.AsyncClient, cid: str, content: str) -> dict[str, Any]:
    response = await client.post(f"/api/conversations/{cid}/messages", json={"content": content})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def events(
    client: httpx.AsyncClient, url: str, last: str | None = None
) -> tuple[int, list[sse.Event]]:
    """The status and every event of a stream, read to its end."""
    headers = {"Last-Event-ID": last} if last else {}
    response = await client.get(url, headers=headers)
    return response.status_code, sse.parse(response.text)


async def under_way(app: FastAPI, generation_id: str) -> None:
    """Wait until the answer's first event is in the app's event log, where its readers
    get it: from then on, whatever happens, that much of the answer has been seen.
    (An httpx ASGI client cannot stand in for the reader: it reads a whole body.)"""
    log: EventLog = app.state.log
    batch = await log.read_batch(generation_id, None, 10)
    assert batch, f"the answer {generation_id} wrote nothing within 10 s"


# -- the browser's stream ------------------------------------------------------------

MIXED = (
    "## A heading\n\nSome *emphasis* and `code` in a paragraph that runs on for a while.\n\n"
    "- a list item\n- another item\n\n```python\ndef f(x):\n    return x * 2\n```\n\n"
    "| col | n |\n|---|--:|\n| a | 1 |\n\n"
)


def shown_body(frames: list[sse.Event]) -> str:
    """The answer's body as the browser ends up showing it: the snapshot, the
    appended blocks, and the final article (or the kept body)."""
    body = ""
    for frame in frames:
        if frame.event == "frame" and 'id="body-' in frame.data:  # the snapshot
            start = frame.data.index(">") + 1
            end = re.search(r'</div>\s*<div id="tail-', frame.data)
            assert end is not None
            body = frame.data[start : end.start()]
        elif frame.event == "b":
            body += frame.data
        elif frame.event == "end":
            article = html_tree.parse(frame.data).find("article")
            md = article.find(class_="md")
            if "hx-preserve" not in md.attrs:
                return frame.data
    return body


# -- models --------------------------------------------------------------------------


class ScriptedModel:
    """A model that says what it is told, records what it saw, and can fail or hang."""

    name = "scripted"

    def __init__(
        self, words: Sequence[str] = ("Hello ", "there."), fail_after: int | None = None
    ) -> None:
        self.words = list(words)
        self.fail_after = fail_after
        self.hang = False
        self.pause = 0.0  # seconds between two words
        self.seen: list[list[Turn]] = []
        self.instructions: list[str] = []  # the instructions of each answer, in turn
        self.closed = False

    async def stream(
        self, history: Sequence[Turn], *, instructions: str = ""
    ) -> AsyncIterator[AgentEvent]:
        self.seen.append(list(history))
        self.instructions.append(instructions)
        for index, word in enumerate(self.words):
            if self.fail_after is not None and index == self.fail_after:
                raise ProviderError("The model's server failed (HTTP 500); please try again.")
            yield TextDelta(word)
            await asyncio.sleep(self.pause)
        while self.hang:  # a model that says no more and does not end, until told to
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        self.closed = True


class TitlingModel(ScriptedModel):
    """A scripted model that also writes titles (`TitleWriter`): `title_text`, after
    `title_delay` seconds; records what it was asked to title."""

    name = "titling"

    def __init__(self, words: Sequence[str] = ("Hello ", "there."), title: str = "A title") -> None:
        super().__init__(words)
        self.title_text = title
        self.title_delay = 0.0
        self.titled: list[tuple[str, str]] = []

    async def title(self, question: str, answer: str, timeout: float) -> str:
        self.titled.append((question, answer))
        await asyncio.sleep(self.title_delay)
        return self.title_text


async def run(  # every event of one answer, and the error that ended it (if any)
    model: ChatModel, history: Sequence[Turn]
) -> tuple[list[AgentEvent], ProviderError | None]:
    events: list[AgentEvent] = []
    try:
        async for event in model.stream(history):
            events.append(event)
    except ProviderError as exc:
        return events, exc
    return events, None


def without_usage(events: Sequence[AgentEvent]) -> list[AgentEvent]:
    """The events but the `Usage` ones (for tests about something else)."""
    return [event for event in events if not isinstance(event, Usage)]


def text_of(events: Sequence[AgentEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def ask(*texts: str) -> list[Turn]:  # user, assistant, user…
    roles = [Role.USER, Role.ASSISTANT]
    return [Turn(roles[index % 2], text) for index, text in enumerate(texts)]


# -- accounts ------------------------------------------------------------------------

PASSWORD = "correct horse battery"


@contextmanager
def cheap_password_hashing() -> Iterator[None]:
    """argon2id with the smallest parameters, for tests that sign in many times (the real
    ones cost 0.1 s of a core per check, on purpose)."""
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    from hxchat.auth import passwords

    real = passwords.HASHER
    passwords.HASHER = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
    passwords._dummy_hash.cache_clear()
    try:
        yield
    finally:
        passwords.HASHER = real
        passwords._dummy_hash.cache_clear()


async def add_user(app: FastAPI, name: str, password: str = PASSWORD, admin: bool = False) -> Any:
    """A password account on the app's store (as `hxchat users add` makes one)."""
    return await app.state.accounts.add(name, password, admin=admin)


async def sign_in(
    client: httpx.AsyncClient, name: str, password: str = PASSWORD, next: str = "/"
) -> httpx.Response:
    return await client.post("/login", data={"username": name, "password": password, "next": next})


@asynccontextmanager
async def signed_in(
    app: FastAPI, name: str, *, admin: bool = False
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` signed in, through the sign-in form, as a new password
    account `name`."""
    await add_user(app, name, admin=admin)
    async with client_for(app) as client:
        signed = await sign_in(client, name)
        assert signed.status_code == 303, signed.text
        yield client
