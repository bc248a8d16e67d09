"""Fixtures: a real app on a temporary SQLite file, real services when CI gives them."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Playwright

from hxchat.config import Settings, load_settings
from tests.helpers import (
    CHROMIUM_ARGS,
    app_on,
    cheap_password_hashing,
    client_for,
    fresh_postgres_database,
    require_chromium,
    require_postgres,
    running_app,
)

# -- databases: each SQLite test gets a file, each PostgreSQL test a fresh database ----


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


@pytest.fixture
def cheap_hashing() -> Iterator[None]:
    """argon2id at its smallest (`cheap_password_hashing`), for a module that signs in
    many times: `pytestmark = pytest.mark.usefixtures("cheap_hashing")`."""
    with cheap_password_hashing():
        yield


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with running_app(settings) as a:
        yield a


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

    require_chromium()
    # Module scope: the sync API's own event loop is gone before any asyncio test runs.
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=require_chromium(), args=CHROMIUM_ARGS)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
async def db_app(
    database_url: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[FastAPI]:
    """The app on each test database (SQLite, PostgreSQL), at the newest schema."""
    async with app_on(make_settings, database_url) as app:
        yield app


@pytest.fixture
async def api(db_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `db_app`."""
    async with client_for(db_app) as client:
        yield client
