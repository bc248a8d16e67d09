"""The browser tests' page objects and watchers: the chat page found by role and
accessible name, what a watched page did wrong, and a streaming answer's renderings.

`serious_violations` runs axe-core (vendored in tests/browser/vendor, from npm, with its
licence). The page's Content-Security-Policy forbids inline scripts, so it is not added
as a script tag but evaluated through the DevTools protocol (`page.evaluate`), which
the policy does not govern.

`Watch` records every page of a browser context for Content-Security-Policy violations
(the `securitypolicyviolation` event, reported across navigations, and console errors
naming the policy), uncaught script errors and dialogs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Locator,
    Page,
    ViewportSize,
    expect,
)

from tests.servers import Server, add_account, serving

ECHO_DELAY_MS = 25  # the echo model's pause between words on the test server
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
CONVERSATION_URL = re.compile(r"/c/([0-9A-Za-z_-]+)$")
THINKING = "Thinking…"  # the screen-reader text of the placeholder's indicator

AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1.min.js"
RUN_AXE = """
async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary}`),
  }));
}
"""

# Runs in every document before its own scripts: records CSP violations in the page
# (window.__cspViolations) and reports them to the test, which survives navigations.
WATCH_SCRIPT = """
(() => {
  window.__cspViolations = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    const v = `${e.violatedDirective} blocked ${e.blockedURI || "inline"} `
      + `at ${e.sourceFile}:${e.lineNumber} (${e.sample})`;
    window.__cspViolations.push(v);
    if (typeof window.__hxchatTestCsp === "function") window.__hxchatTestCsp(v);
  }, true);
})();
"""


@dataclass
class Watch:
    """What the pages of one browser context did that no working page should do."""

    csp: list[str] = field(default_factory=list)
    console_csp: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    accept_dialogs: bool = False
    pages: list[Page] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        self.pages.append(page)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("dialog", self._dialog)

    def report_csp(self, violation: str) -> None:
        """Called from the page (through a Playwright binding) for each violation."""
        self.csp.append(violation)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.console_csp.append(message.text)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        if self.accept_dialogs:
            dialog.accept()
        else:
            dialog.dismiss()

    def in_page_violations(self) -> list[str]:
        found: list[str] = []
        for page in self.pages:
            if not page.is_closed():
                found += page.evaluate("() => window.__cspViolations || []")
        return found

    def problems(self) -> list[str]:
        """Everything that went wrong, as readable lines (empty when all is well)."""
        lines = [f"CSP violation (event): {v}" for v in self.csp]
        lines += [f"CSP violation (in page): {v}" for v in self.in_page_violations()]
        lines += [f"CSP violation (console): {v}" for v in self.console_csp]
        lines += [f"uncaught error: {e}" for e in self.page_errors]
        return lines


def new_context(browser: Browser, server: Server, watch: Watch) -> BrowserContext:
    """A browser context on `server` whose pages are all watched by `watch`."""
    ctx = browser.new_context(viewport=VIEWPORT, base_url=server.url)
    ctx.set_default_timeout(10_000)
    ctx.add_init_script(WATCH_SCRIPT)
    ctx.expose_function("__hxchatTestCsp", watch.report_csp)
    ctx.on("page", watch.attach)
    return ctx


def serious_violations(page: Page, where: str) -> list[str]:
    """axe's serious and critical findings on the page as it is now, one line each."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    return [
        f"{where}: {v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["nodes"])
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


@contextmanager
def server_with_account(
    workdir: Path, env: dict[str, str], name: str, password: str, *extra: str
) -> Iterator[Server]:
    """`hxchat serve` on a fresh SQLite file in `workdir` with `env` (a mode with
    accounts) and one password account, `name`, made with `hxchat users add` (`extra`:
    `--admin`)."""
    env = {
        "HXCHAT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'hxchat.db'}",
        "HXCHAT_ECHO_DELAY_MS": str(ECHO_DELAY_MS),
        **env,
    }
    add_account(workdir, env, name, password, *extra)
    with serving(workdir, env) as server:
        yield server


def sign_in_with_password(page: Page, name: str, password: str) -> None:
    """Fill the sign-in page's form and press `Sign in`, as a person does."""
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def words(count: int, prefix: str = "word") -> str:
    """`count` distinct plain words: `word1 word2 …` (the echo model says them back)."""
    return " ".join(f"{prefix}{i}" for i in range(1, count + 1))


class Chat:
    """The chat page as a person sees it: found by role and accessible name."""

    def __init__(self, page: Page) -> None:
        self.page = page

    @property
    def message_box(self) -> Locator:
        return self.page.get_by_role("textbox", name="Message")

    @property
    def send_button(self) -> Locator:
        return self.page.get_by_role("button", name="Send", exact=True)

    @property
    def stop_button(self) -> Locator:
        return self.page.get_by_role("button", name="Stop", exact=True)

    @property
    def transcript(self) -> Locator:
        return self.page.get_by_role("log")

    @property
    def nav(self) -> Locator:
        return self.page.get_by_role("navigation", name="Conversations")

    @property
    def error(self) -> Locator:
        """The readable error next to the composer."""
        return self.page.locator("form#composer").get_by_role("alert")

    @property
    def answers(self) -> Locator:
        return self.transcript.locator("article[data-role=assistant]")

    @property
    def questions(self) -> Locator:
        return self.transcript.locator("article[data-role=user]")

    def open(self, path: str = "/") -> None:
        response = self.page.goto(path)
        assert response is not None and response.ok, f"GET {path} failed"
        expect(self.message_box).to_be_editable()

    def send(self, text: str) -> Locator:
        """Type `text`, press Enter, and return the new answer's article."""
        before = self.answers.count()
        self.message_box.fill(text)
        self.message_box.press("Enter")
        expect(self.answers).to_have_count(before + 1)
        return self.answers.nth(before)

    def ask(self, text: str, timeout: float = 15_000) -> Locator:
        """Send `text` and wait for the complete answer."""
        answer = self.send(text)
        expect(answer).to_have_attribute("data-status", "complete", timeout=timeout)
        return answer

    def conversation_id(self) -> str:
        expect(self.page).to_have_url(CONVERSATION_URL)
        match = CONVERSATION_URL.search(self.page.url)
        assert match is not None
        return match.group(1)

    def nav_link(self, conversation_id: str) -> Locator:
        return self.nav.locator(f'a[href="/c/{conversation_id}"]')


def send_without_script(chat: Chat, text: str) -> str:
    """Type `text` and press Send on a page without JavaScript (a plain form post);
    return the id of the conversation it lands on."""
    chat.message_box.fill(text)
    chat.send_button.click()
    return chat.conversation_id()


def until_answered(page: Page) -> None:
    """Without JavaScript nothing streams in: reload until the answer is there."""
    for _ in range(100):
        if page.locator("article[data-status=streaming]").count() == 0:
            return
        page.wait_for_timeout(100)
        page.reload()
    raise AssertionError("the answer did not end")


def stop_keeps_what_was_written(chat: Chat, answer: Locator, text: str) -> list[str]:
    """Press Stop while `answer` streams `text`: it ends `stopped` and keeps a true,
    non-empty start of `text`, whose words are returned."""
    expect(answer).to_contain_text("word5")
    chat.stop_button.click()
    expect(answer).to_have_attribute("data-status", "stopped")
    partial = answer_text(answer).split()
    assert 0 < len(partial) < len(text.split())
    assert partial == text.split()[: len(partial)], "the kept text is not what was written"
    return partial


def answer_text(article: Locator) -> str:
    """The visible text of an answer, without its screen-reader heading and footer."""
    return article.locator(".answer").inner_text().strip()


def renderings(article: Locator, *, limit: float = 20) -> list[str]:
    """The distinct texts a streaming answer shows until its status leaves `streaming`."""
    page = article.page
    # By id, in one call: a locator is resolved and then evaluated in two round trips,
    # so it can hand over the article the final frame has just replaced (detached,
    # its body already moved into the new one), which shows only its stale tail.
    element_id = article.get_attribute("id")
    seen: list[str] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status, text = page.evaluate(
            """id => {
              const a = document.getElementById(id);
              return [a.dataset.status, a.querySelector('.answer')?.innerText ?? ''];
            }""",
            element_id,
        )
        if status != "streaming":
            break
        text = text.replace(THINKING, "").strip()
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        page.wait_for_timeout(10)
    return seen
