"""The chat page in a real browser behind a round-robin proxy over two workers (issue #5).

No sticky sessions: the proxy (`proxies.RoundRobinProxy`) sends each request to the
next worker, so the page, the form post, the event stream and the Stop button of one
answer land on different workers, which share PostgreSQL and Redis. The page must work as it does
on one process, and raise no Content-Security-Policy violation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.helpers import (
    VIEWPORT,
    WATCH_SCRIPT,
    Chat,
    Watch,
    answer_text,
    renderings,
    stop_keeps_what_was_written,
    words,
)
from tests.e2e.cluster import shared_environment, workers
from tests.e2e.proxies import RoundRobinProxy
from tests.helpers import require_chromium
from tests.servers import Server

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

REDIS_DB = 13
ECHO_DELAY_MS = 50


@dataclass
class Proxied:
    proxy: RoundRobinProxy
    workers: list[Server]

    def backends_of(self, needle: str) -> set[int]:
        """The ports of the workers that served requests whose line contains `needle`."""
        return {backend[1] for backend, line in self.proxy.served if needle in line}


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    require_chromium()
    workdir = tmp_path_factory.mktemp("browser-proxy")
    with (
        shared_environment(workdir, REDIS_DB, ECHO_DELAY_MS) as env,
        workers(workdir, [env, env]) as servers,
    ):
        proxy = RoundRobinProxy([("127.0.0.1", s.port) for s in servers])
        try:
            yield Proxied(proxy, servers)
        finally:
            proxy.close()


@pytest.fixture
def page(proxied: Proxied, browser: Browser) -> Iterator[Page]:
    """A fresh profile on the proxy; its pages must raise no CSP violation or error."""
    watch = Watch()
    context = browser.new_context(viewport=VIEWPORT, base_url=proxied.proxy.url)
    context.set_default_timeout(10_000)
    context.add_init_script(WATCH_SCRIPT)
    context.expose_function("__hxchatTestCsp", watch.report_csp)
    context.on("page", watch.attach)
    try:
        p = context.new_page()
        yield p
        problems = watch.problems()
        assert not problems, "the page misbehaved:\n" + "\n".join(problems)
    finally:
        context.close()


def test_the_page_works_through_a_round_robin_proxy(page: Page, proxied: Proxied) -> None:
    chat = Chat(page)
    chat.open()
    first = chat.ask("Hello **proxy**, one\n\n- alpha\n- beta")
    expect(first.locator("strong")).to_have_text("proxy")
    expect(first.locator("li")).to_have_text(["alpha", "beta"])
    text = words(40)  # 2 s
    second = chat.send(text)
    seen = renderings(second)
    assert len(seen) >= 3, f"the answer did not stream through the proxy: {seen!r}"
    expect(second).to_have_attribute("data-status", "complete")
    assert answer_text(second) == text  # nothing lost, nothing twice
    conversation_id = chat.conversation_id()

    page.reload()
    expect(chat.questions).to_have_count(2)
    expect(chat.answers).to_have_count(2)
    for answer in chat.answers.all():
        expect(answer).to_have_attribute("data-status", "complete")
    assert answer_text(chat.answers.nth(1)) == text
    expect(chat.nav_link(conversation_id)).to_be_visible()

    both = {s.port for s in proxied.workers}
    assert proxied.backends_of(" / ") | proxied.backends_of("/c/") == both
    assert proxied.backends_of("/stream") | proxied.backends_of("/send") == both


def test_stop_through_a_round_robin_proxy(page: Page) -> None:
    chat = Chat(page)
    chat.open()
    text = words(200)  # 10 s
    answer = chat.send(text)
    partial = stop_keeps_what_was_written(chat, answer, text)
    expect(chat.send_button).to_be_visible()

    page.reload()  # what was kept is stored
    stored = chat.answers.first
    expect(stored).to_have_attribute("data-status", "stopped")
    assert answer_text(stored).split() == partial
