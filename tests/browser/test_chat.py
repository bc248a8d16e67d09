"""The chat page in a real browser, as a person uses it: send, watch, stop, come back.

Each test starts with a fresh browser profile (its own session, so its own conversation
list) against one `hxchat serve` whose echo model says every message back as Markdown,
a word each 25 ms. Every page must raise no Content-Security-Policy violation (checked
by the `page` fixture when the test ends).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.helpers import (
    ECHO_DELAY_MS,
    Chat,
    Watch,
    answer_text,
    new_context,
    renderings,
    stop_keeps_what_was_written,
    words,
)
from tests.helpers import eventually_sync
from tests.servers import Server, serving

pytestmark = pytest.mark.browser

MARKDOWN = """## Streaming check

A paragraph with *emphasis*, **strong** words and `inline code` to begin with.

- first item
- second item
- third item

| Engine | Kind |
| --- | --- |
| SQLite | embedded |
| PostgreSQL | server |

```python
def merge(a, b):
    return sorted(a + b)
```

A closing paragraph after the code.
"""

# Records, the moment the assistant's article is inserted, what a person sees of it.
PLACEHOLDER_PROBE = """
(() => {
  new MutationObserver((records, observer) => {
    const a = document.querySelector("article[data-role=assistant]");
    if (!a) return;
    observer.disconnect();
    const thinking = [...a.querySelectorAll("[role=status]")]
      .find((e) => e.textContent.includes("Thinking"));
    const box = thinking ? thinking.getBoundingClientRect() : null;
    window.__placeholder = {
      status: a.dataset.status,
      question: !!document.querySelector("article[data-role=user]"),
      thinking: !!thinking && getComputedStyle(thinking).display !== "none"
        && box.width > 0 && box.height > 0,
    };
  }).observe(document, { childList: true, subtree: true });
})();
"""


def test_the_answer_streams_in_as_rendered_markdown(chat: Chat, page: Page) -> None:
    page.add_init_script(PLACEHOLDER_PROBE)
    chat.open()
    answer = chat.send(MARKDOWN)

    seen = renderings(answer)
    placeholder = page.evaluate("() => window.__placeholder")
    assert placeholder == {"status": "streaming", "question": True, "thinking": True}
    assert len(seen) >= 3, f"expected the answer to grow, saw {seen!r}"
    assert len(seen[0]) < len(seen[-1])
    expect(answer).to_have_attribute("data-status", "complete")

    expect(chat.questions).to_have_count(1)
    expect(chat.questions.first).to_contain_text("| Engine | Kind |")  # the user's text, as typed
    expect(answer.get_by_role("heading", name="Streaming check")).to_be_visible()
    expect(answer.locator("ul li")).to_have_text(["first item", "second item", "third item"])
    expect(answer.locator("table th")).to_have_text(["Engine", "Kind"])
    expect(answer.locator("table td")).to_have_text(["SQLite", "embedded", "PostgreSQL", "server"])
    expect(answer.locator("pre span.k").first).to_have_text("def")  # Pygments: a keyword
    expect(answer.locator("pre span.nf")).to_have_text("merge")  # and a function name
    colours = answer.locator("pre").evaluate(
        "pre => [getComputedStyle(pre).color, getComputedStyle(pre.querySelector('.k')).color]"
    )
    assert colours[0] != colours[1], "keywords are not highlighted"

    conversation_id = chat.conversation_id()
    title = page.get_by_role("heading", level=1)
    expect(title).to_contain_text("Streaming check")
    assert page.title() == title.inner_text()
    link = chat.nav_link(conversation_id)
    expect(link).to_have_attribute("aria-current", "page")
    expect(link).to_have_text(page.title())
    expect(chat.nav.locator("[aria-current=page]")).to_have_count(1)


def test_shift_enter_is_a_new_line_and_composing_does_not_send(
    chat: Chat, page: Page, context: BrowserContext
) -> None:
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    chat.open()
    chat.message_box.click()
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line ")
    expect(chat.message_box).to_have_value("first line\nsecond line ")

    # An input method is composing; its Enter confirms the composition, it must not send.
    cdp = context.new_cdp_session(page)
    cdp.send("Input.imeSetComposition", {"text": "にほん", "selectionStart": 3, "selectionEnd": 3})
    enter = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}
    cdp.send("Input.dispatchKeyEvent", {"type": "keyDown", **enter})
    cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", **enter})
    cdp.send("Input.insertText", {"text": "日本"})
    expect(chat.message_box).to_have_value("first line\nsecond line 日本")
    page.wait_for_timeout(300)  # time enough for a (wrong) post
    assert posts == []
    expect(chat.questions).to_have_count(0)

    chat.message_box.press("Enter")  # composition over: now Enter sends
    expect(chat.questions).to_have_count(1)
    assert "first line\nsecond line 日本" in chat.questions.first.inner_text()
    expect(chat.answers.first).to_have_attribute("data-status", "complete")


def test_stop_keeps_the_partial_answer_and_retry_replaces_it(chat: Chat, page: Page) -> None:
    text = words(120)
    chat.open()
    answer = chat.send(text)
    expect(chat.send_button).to_be_hidden()
    partial = stop_keeps_what_was_written(chat, answer, text)
    expect(answer.get_by_text("Stopped", exact=True)).to_be_visible()
    expect(answer.get_by_role("button", name="Retry")).to_be_visible()
    expect(chat.send_button).to_be_visible()
    expect(chat.stop_button).to_have_count(0)

    page.reload()  # what was kept is stored
    expect(answer).to_have_attribute("data-status", "stopped")
    assert answer_text(answer).split() == partial

    answer.get_by_role("button", name="Retry").click()
    expect(answer).to_have_attribute("data-status", "streaming")
    expect(chat.stop_button).to_be_visible()
    expect(answer).to_have_attribute("data-status", "complete", timeout=15_000)
    expect(chat.answers).to_have_count(1)
    assert answer_text(answer) == text
    expect(answer.get_by_text("Stopped", exact=True)).to_have_count(0)
    expect(answer.get_by_role("button", name="Retry")).to_have_count(0)
    expect(chat.send_button).to_be_visible()


def test_history_comes_back_and_a_running_answer_resumes_elsewhere(
    chat: Chat, page: Page, context: BrowserContext
) -> None:
    chat.open()
    chat.ask("Hello **there**")
    chat.ask("- alpha\n- beta")
    conversation_id = chat.conversation_id()

    page.reload()
    expect(chat.questions).to_have_count(2)
    expect(chat.answers).to_have_count(2)
    for status in chat.answers.all():
        expect(status).to_have_attribute("data-status", "complete")
    expect(chat.questions.first).to_contain_text("Hello **there**")
    expect(chat.answers.first.locator("strong")).to_have_text("there")
    expect(chat.answers.nth(1).locator("li")).to_have_text(["alpha", "beta"])
    expect(chat.nav_link(conversation_id)).to_have_attribute("aria-current", "page")

    # A long answer: leave while it streams, and open it on another page.
    text = words(100, "resume")
    chat.send(text)
    expect(chat.answers.nth(2)).to_contain_text("resume3")
    page.goto("/")
    other = Chat(context.new_page())
    other.open(f"/c/{conversation_id}")
    resumed = other.answers.nth(2)
    assert resumed.get_attribute("data-status") == "streaming"
    assert len(renderings(resumed)) >= 2, "the answer did not go on growing"
    expect(resumed).to_have_attribute("data-status", "complete")
    assert answer_text(resumed) == text  # nothing lost, nothing twice

    chat.open(f"/c/{conversation_id}")
    expect(chat.answers.nth(2)).to_have_attribute("data-status", "complete")
    assert answer_text(chat.answers.nth(2)) == text


def test_refused_messages_show_an_error_and_keep_the_text(chat: Chat) -> None:
    chat.open()
    too_long = "a" * 16_001
    chat.message_box.fill(too_long)
    chat.message_box.press("Enter")
    expect(chat.error).to_contain_text("limit is 16,000")
    expect(chat.message_box).to_have_value(too_long)

    chat.message_box.fill("   ")
    chat.message_box.press("Enter")
    expect(chat.error).to_contain_text("empty")
    expect(chat.message_box).to_have_value("   ")
    expect(chat.transcript.locator("article")).to_have_count(0)

    answer = chat.send(words(60))
    chat.message_box.fill("too soon")
    chat.message_box.press("Enter")
    expect(chat.error).to_contain_text("still being written")
    expect(chat.message_box).to_have_value("too soon")
    expect(chat.questions).to_have_count(1)

    expect(answer).to_have_attribute("data-status", "complete")
    chat.message_box.press("Enter")  # once the answer is done, the kept text goes
    expect(chat.questions).to_have_count(2)
    expect(chat.error).to_be_hidden()  # the error is gone
    expect(chat.message_box).to_have_value("")


def test_new_chat_starts_empty_and_examples_fill_the_composer(chat: Chat, page: Page) -> None:
    chat.open()
    chat.ask("the first conversation")
    first = chat.conversation_id()

    chat.nav.get_by_role("link", name="New chat").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name="What can I help with?")).to_be_visible()
    expect(chat.transcript.locator("article")).to_have_count(0)
    expect(chat.message_box).to_have_value("")
    expect(chat.nav_link(first)).not_to_have_attribute("aria-current", "page")

    page.get_by_role("button", name="Compare two databases in a table").click()
    expect(chat.message_box).to_have_value("Compare SQLite and PostgreSQL in a table.")
    expect(chat.message_box).to_be_focused()
    chat.message_box.press("Enter")
    expect(chat.answers.first).to_have_attribute("data-status", "complete")
    second = chat.conversation_id()
    assert second != first
    expect(chat.nav.locator("li a")).to_have_count(2)
    expect(chat.nav.locator("li a").first).to_have_attribute("href", f"/c/{second}")


def test_a_streaming_paragraph_never_glues_words_together(chat: Chat) -> None:
    chat.open()
    text = words(80)
    answer = chat.send(text)
    glued = [
        seen for seen in renderings(answer) if seen.split() != text.split()[: len(seen.split())]
    ]
    assert glued == [], f"{len(glued)} renderings showed words that were never written"
    expect(answer).to_have_attribute("data-status", "complete")


LOG = "document.querySelector('[role=log]')"
OVERFLOWS = f"() => {{ const t = {LOG}; return t.scrollHeight > t.clientHeight + 300; }}"
SCROLLED_UP = (
    f"() => {{ const t = {LOG}; return t.scrollHeight - t.scrollTop - t.clientHeight > 200; }}"
)
AT_BOTTOM = (
    f"() => {{ const t = {LOG}; return t.scrollHeight - t.scrollTop - t.clientHeight < 5; }}"
)


def test_the_view_follows_the_answer_until_the_reader_scrolls_up(chat: Chat, page: Page) -> None:
    page.set_viewport_size({"width": 900, "height": 500})
    chat.open()
    answer = chat.send("\n\n".join(f"Paragraph {i}." for i in range(1, 81)))
    log = chat.transcript
    page.wait_for_function(OVERFLOWS)
    for _ in range(3):  # it follows the bottom while the answer grows
        assert page.evaluate(AT_BOTTOM)
        page.wait_for_timeout(120)
    jump = page.get_by_role("button", name="Jump to latest")
    expect(jump).to_be_hidden()

    log.hover()
    page.mouse.wheel(0, -400)
    page.wait_for_function(SCROLLED_UP)
    top, height = log.evaluate("t => [t.scrollTop, t.scrollHeight]")
    page.wait_for_timeout(500)  # the reader reads while the answer grows
    expect(answer).to_have_attribute("data-status", "streaming")
    later_top, later_height = log.evaluate("t => [t.scrollTop, t.scrollHeight]")
    assert later_height > height, "the answer stopped growing"
    assert abs(later_top - top) <= 1, "the view jumped while the reader was reading"
    expect(jump).to_be_visible()

    jump.click()
    page.wait_for_function(AT_BOTTOM)
    expect(jump).to_be_hidden()
    expect(answer).to_have_attribute("data-status", "complete", timeout=15_000)
    assert page.evaluate(AT_BOTTOM), "the view stopped following after Jump to latest"


def test_delete_the_current_conversation(chat: Chat, page: Page, watch: Watch) -> None:
    chat.open()
    chat.ask("keep me")
    kept = chat.conversation_id()
    chat.nav.get_by_role("link", name="New chat").click()
    chat.ask("delete me")
    doomed = chat.conversation_id()
    delete = page.locator("#conversation-actions").get_by_role("button", name="Delete")

    delete.click()  # the confirmation is dismissed: nothing happens
    expect(chat.nav_link(doomed)).to_have_count(1)
    assert watch.dialogs == ["Delete this conversation?"]
    expect(page).to_have_url(re.compile(f"/c/{doomed}$"))

    watch.accept_dialogs = True
    delete.click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(chat.nav_link(doomed)).to_have_count(0)
    expect(chat.nav_link(kept)).to_have_count(1)
    response = page.goto(f"/c/{doomed}")
    assert response is not None and response.status == 404


def test_the_watch_sees_a_csp_violation(page: Page, watch: Watch) -> None:
    """The CSP checks of the other tests can fail: an inline script is refused and seen."""
    response = page.goto("/")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.__inline = 1'; document.body.append(s); }"
    )
    page.wait_for_function("() => window.__cspViolations.length > 0")

    def both_reported() -> None:  # through the binding and on the console
        assert watch.csp and watch.console_csp, watch.problems()

    eventually_sync(
        both_reported, within=5, pause=lambda seconds: page.wait_for_timeout(seconds * 1000)
    )
    assert page.evaluate("typeof window.__inline") == "undefined"
    assert any("script-src" in p for p in watch.problems())
    watch.csp.clear()
    watch.console_csp.clear()
    page.evaluate("() => { window.__cspViolations = []; }")


@pytest.fixture(scope="module")
def short_lived_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that cuts every browser stream after a second (HXCHAT_STREAM_LIFETIME)."""
    workdir = tmp_path_factory.mktemp("short-lived")
    env = {
        "HXCHAT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'hxchat.db'}",
        "HXCHAT_ECHO_DELAY_MS": str(ECHO_DELAY_MS),
        "HXCHAT_STREAM_LIFETIME": "1",
    }
    with serving(workdir, env) as s:
        yield s


def test_a_cut_stream_reconnects_and_resumes_without_duplicates(
    browser: Browser, short_lived_server: Server, watch: Watch
) -> None:
    """The browser reconnects by itself (htmx's SSE extension or EventSource) after the
    server's connection cap; the answer goes on, nothing lost and nothing twice."""
    context = new_context(browser, short_lived_server, watch)
    try:
        chat = Chat(context.new_page())
        streams: list[str] = []
        chat.page.on("request", lambda r: streams.append(r.url) if "/stream" in r.url else None)
        chat.open()
        text = words(150, "cut")
        answer = chat.send(text)
        squeezed = "".join(text.split())  # spacing is another test's business
        for seen in renderings(answer, limit=30):
            assert squeezed.startswith("".join(seen.split())), f"lost or doubled: {seen!r}"
        expect(answer).to_have_attribute("data-status", "complete")
        assert answer_text(answer) == text
        assert len(streams) >= 2, "the stream was never cut and resumed"
        problems = watch.problems()
        assert not problems, "\n".join(problems)
    finally:
        context.close()
