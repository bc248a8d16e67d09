"""Fixtures: a real app on a temporary SQLite file, real services when CI gives them."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Playwright
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from hxchat.app import create_app
from hxchat.config import Settings, load_settings

POSTGRES_URL = os.environ.get("HXCHAT_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("HXCHAT_TEST_REDIS_URL")
REQUIRE_SERVICES = os.environ.get("HXCHAT_TEST_REQUIRE_SERVICES") == "1"


def need(url: str | None, variable: str) -> str:
    """The service URL, or a skip (a failure on CI, where the services must run)."""
    if url:
        return url
    if REQUIRE_SERVICES:
        pytest.fail(f"{variable} is not set, but HXCHAT_TEST_REQUIRE_SERVICES=1")
    pytest.skip(f"{variable} is not set: this test needs a real server")


# -- databases: each SQLite test gets a file, each PostgreSQL test a fresh database ----


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


def require_postgres() -> str:
    """The PostgreSQL server's URL, or a skip (a failure on CI, where it must run)."""
    return need(POSTGRES_URL, "HXCHAT_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'hxchat.db'}"
        return
    async with fresh_postgres_database(require_postgres()) as url:
        yield url


@pytest.fixture(autouse=True)
def _no_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read a developer's .env or HXCHAT_ variables."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("HXCHAT_") and not name.startswith("HXCHAT_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'hxchat.db'}",
            "echo_delay_ms": 0,
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """An app with its lifespan running: store, event log, model, runner."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with running_app(settings) as a:
        yield a


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=30
    )


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


@pytest.fixture
async def other_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A second session (another cookie) on the same app."""
    async with client_for(app) as c:
        yield c


# -- the browser, shared by tests/browser and tests/e2e --------------------------------


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    from playwright.sync_api import sync_playwright

    from tests.chromium import require_chromium

    require_chromium()
    # Module scope: the sync API's own event loop is gone before any asyncio test runs.
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    from tests.chromium import CHROMIUM_ARGS, require_chromium

    b = playwright.chromium.launch(executable_path=require_chromium(), args=CHROMIUM_ARGS)
    try:
        yield b
    finally:
        b.close()
