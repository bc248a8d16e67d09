"""Fixtures for the browser tests: one real `hxchat serve`, the system Chromium, watched pages.

Why a real server and a real browser: streaming, the Content-Security-Policy, focus and
rendering can only be seen as a person sees them in a browser. Every page of a test is
watched for Content-Security-Policy violations (the `securitypolicyviolation` event,
reported across navigations, and console errors naming the policy) and for uncaught
script errors; a test whose page raised one fails at its teardown.

`playwright install` is not used: the Debian Chromium (or `HXCHAT_TEST_CHROMIUM`) is.
Without it the tests skip, except with `HXCHAT_TEST_REQUIRE_SERVICES=1`, where they fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.browser.helpers import ECHO_DELAY_MS, VIEWPORT, Chat, Watch, new_context
from tests.servers import Server, serving


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`hxchat serve` on a free port with a fresh SQLite file and a quick echo model."""
    workdir = tmp_path_factory.mktemp("browser-server")
    env = {
        "HXCHAT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'hxchat.db'}",
        "HXCHAT_ECHO_DELAY_MS": str(ECHO_DELAY_MS),
    }
    with serving(workdir, env) as s:
        yield s


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def context(browser: Browser, server: Server, watch: Watch) -> Iterator[BrowserContext]:
    """A fresh profile (so a fresh session cookie: its own conversations)."""
    ctx = new_context(browser, server, watch)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext, watch: Watch) -> Iterator[Page]:
    """A page that must raise no CSP violation and no uncaught error (checked at the end)."""
    p = context.new_page()
    yield p
    problems = watch.problems()
    assert not problems, "the page misbehaved:\n" + "\n".join(problems)


@pytest.fixture
def chat(page: Page) -> Chat:
    return Chat(page)


@pytest.fixture
def no_script(browser: Browser, server: Server) -> Iterator[BrowserContext]:
    """A fresh profile with JavaScript switched off: every control must be a plain form."""
    ctx = browser.new_context(
        viewport=VIEWPORT, base_url=server.url, java_script_enabled=False, accept_downloads=True
    )
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def plain_chat(no_script: BrowserContext) -> Chat:
    """The chat page, opened in the profile without JavaScript."""
    chat = Chat(no_script.new_page())
    chat.open()
    return chat
