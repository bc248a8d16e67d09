"""Hostile input, as the user's message and (through the echo model) as the model's answer.

The echo model says the message back as Markdown, so one message exercises both paths:
the user's text (escaped by the template) and the model's Markdown (markdown-it with raw
HTML off, safe link schemes only, nh3 last). In the browser nothing may execute, no
dangerous element may exist, and the hostile text must stay visible as text: while the
answer streams, when it is complete, and after a reload (the history path).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.browser.helpers import Chat, Watch

pytestmark = pytest.mark.browser

# Shown literally, in the user's message and in the rendered answer.
RAW = [
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=2">',
    '<a href="javascript:window.__xss=4">click4</a>',
    '<svg onload="window.__xss=5">',
    '<iframe srcdoc="<script>parent.__xss=6</script>">',
    '<div onclick="window.__xss=8">raw block 8</div>',
    "<style>body{display:none}</style>",
    "<script>alert(14)</script>",
    '<details open ontoggle="window.__xss=15">',
    '<object data="javascript:window.__xss=16"></object>',
]
# Markdown links and images with a script URL: their text stays, their link goes.
LINKS = {
    "[click3](javascript:window.__xss=3)": "click3",
    "[click7](JaVaScRiPt:window.__xss=7)": "click7",
    "[click9](javascript&colon;window.__xss=9)": "click9",
    "[click10](&#106;avascript:window.__xss=10)": "click10",
    "[click11](<java\tscript:window.__xss=11>)": "click11",
    "![img12](javascript:window.__xss=12)": "img12",
    "[click13][r13]": "click13",
    "<javascript:window.__xss=17>": "javascript:window.__xss=17",
}
HOSTILE = "\n\n".join(
    [
        *RAW,
        *LINKS,
        "[r13]: javascript:window.__xss=13",
        "Inline <img src=x onerror=window.__xss=18> and <b onmouseover=window.__xss=19>hover</b>.",
        "| cell | <script>window.__xss=20</script> |\n| --- | --- |\n"
        "| [click21](javascript:window.__xss=21) | x |",
        "- <iframe src=javascript:window.__xss=22></iframe>\n- `<script>window.__xss=23</script>`",
        "```html\n<script>window.__xss=24</script>\n```",
    ]
)
CLICKABLE = ["click3", "click4", "click7", "click9", "click10", "click11", "click13", "click21"]

# Every element or attribute inside the transcript that could run script.
# Forms and inputs are the app's own controls (Edit, Regenerate, versions) outside what
# a message says; inside it (the user's text, the rendered answer, its sources and
# activity line) they can only come from a payload.
DANGER = """
(log) => {
  const found = [];
  const tags = new Set(["script", "iframe", "img", "svg", "style", "object", "embed",
                        "details", "form", "input", "math", "base", "meta", "link"]);
  const controls = new Set(["form", "input"]);
  const said = ".content, .md, .tail, .sources, .activity";
  for (const el of log.querySelectorAll("*")) {
    const tag = el.tagName.toLowerCase();
    if (tags.has(tag) && !(controls.has(tag) && el.closest(said) === null)) found.push(tag);
    for (const attr of el.attributes) {
      const value = attr.value.replace(/[\\x00-\\x20]/g, "").toLowerCase();
      if (attr.name.startsWith("on")) found.push(`${tag}[${attr.name}]`);
      if (attr.name === "srcdoc" || /^(javascript|data|vbscript):/.test(value)) {
        found.push(`${tag}[${attr.name}=${attr.value}]`);
      }
    }
  }
  return found;
}
"""


def assert_harmless(page: Page, watch: Watch) -> None:
    assert page.evaluate("typeof window.__xss") == "undefined", "a payload ran"
    assert chat_danger(page) == []
    assert watch.dialogs == [], "a payload opened a dialog"


def chat_danger(page: Page) -> list[str]:
    found: list[str] = page.get_by_role("log").evaluate(DANGER)
    return found


def assert_shown_as_text(question: Locator, answer: Locator) -> None:
    typed = question.inner_text()
    for payload in [*RAW, *LINKS]:
        assert payload in typed, f"the user's message lost {payload!r}"
    for payload in RAW:
        expect(answer).to_contain_text(payload, use_inner_text=True)
    for text in LINKS.values():
        expect(answer).to_contain_text(text, use_inner_text=True)
    expect(answer.locator("pre")).to_contain_text("<script>window.__xss=24</script>")
    expect(answer.locator("table")).to_contain_text("<script>window.__xss=20</script>")


def click_everything(page: Page, answer: Locator, context: BrowserContext) -> None:
    """Click where the hostile links were, and every link left; nothing may run."""
    url = page.url
    for text in CLICKABLE:
        answer.get_by_text(text).first.click()
    answer.get_by_text("hover</b>").hover()
    for link in answer.get_by_role("link").all():
        link.click(modifiers=["Shift"])  # a new window: the page itself stays
    page.wait_for_timeout(200)  # time enough for a (wrong) navigation
    assert page.url == url
    for other in context.pages:
        if other is not page:
            assert other.evaluate("typeof window.__xss") == "undefined"
            other.close()


def test_hostile_input_does_not_run_and_stays_visible(
    chat: Chat, page: Page, context: BrowserContext, watch: Watch
) -> None:
    chat.open()
    answer = chat.send(HOSTILE)
    checks = 0
    while answer.get_attribute("data-status") == "streaming":  # the streaming path
        assert_harmless(page, watch)
        checks += 1
        page.wait_for_timeout(50)
    assert checks >= 3, "the answer was not watched while it streamed"
    expect(answer).to_have_attribute("data-status", "complete")

    question = chat.questions.first
    assert_harmless(page, watch)
    assert_shown_as_text(question, answer)
    assert page.title().startswith("<script>window."), "the title is not the text typed"
    click_everything(page, answer, context)
    assert_harmless(page, watch)

    page.reload()  # the history path
    expect(answer).to_have_attribute("data-status", "complete")
    assert_harmless(page, watch)
    assert_shown_as_text(question, answer)
    expect(chat.nav.get_by_role("link").nth(1)).to_contain_text("<script>")
    click_everything(page, answer, context)
    assert_harmless(page, watch)
