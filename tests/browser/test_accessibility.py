"""Accessibility: axe-core finds nothing serious, and the keyboard alone is enough.

axe-core (vendored, run by `tests/browser/helpers.py`) runs on the empty chat page,
during and after an answer with a heading, a table and highlighted code, on a stopped
answer, and after a reload, in light and dark.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Literal

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import Chat, answer_text, serious_violations, words
from tests.browser.screenshot import SHOWCASE, capture

pytestmark = pytest.mark.browser

# What has keyboard focus, as a person would name it.
FOCUSED = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const label = el.labels && el.labels.length ? el.labels[0].textContent : el.textContent;
  const style = getComputedStyle(el);
  return {
    name: `${el.tagName.toLowerCase()}:${label.trim()}`,
    ring: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0,
  };
}
"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violation(
    chat: Chat, page: Page, scheme: Literal["light", "dark"]
) -> None:
    page.emulate_media(color_scheme=scheme)
    chat.open()
    assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") == (scheme == "dark")
    found = serious_violations(page, "empty chat page")

    answer = chat.ask(SHOWCASE)
    expect(answer.locator("table")).to_be_visible()
    expect(answer.locator("pre span.k").first).to_be_visible()
    found += serious_violations(page, "complete answer")

    running = chat.send(words(200))
    expect(running).to_contain_text("word3")
    found += serious_violations(page, "streaming answer")
    chat.stop_button.click()
    expect(running).to_have_attribute("data-status", "stopped")
    found += serious_violations(page, "stopped answer")

    page.reload()
    expect(chat.answers).to_have_count(2)
    found += serious_violations(page, "conversation after a reload")
    assert not found, f"axe ({scheme}):\n" + "\n".join(found)


def tab_cycle(page: Page, presses: int = 30) -> list[str]:
    """The names of the controls Tab visits, each with a visible focus ring."""
    visited: list[str] = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None:
            continue
        assert focused["ring"], f"no visible focus ring on {focused['name']}"
        visited.append(focused["name"])
    return visited


def test_the_keyboard_alone_is_enough(chat: Chat, page: Page) -> None:
    chat.open()
    expect(chat.message_box).to_be_focused()  # ready to type on arrival
    page.keyboard.type("Typed without a mouse")
    page.keyboard.press("Enter")
    expect(chat.answers.first).to_have_attribute("data-status", "complete")
    title = page.title()

    visited = tab_cycle(page)
    start = visited.index("a:New chat")
    cycle = visited[start:] + visited[:start]
    expected = ["a:New chat", f"a:{title}", "textarea:Message", "button:Send"]
    positions = [cycle.index(name) for name in expected]  # each is reachable...
    assert positions == sorted(positions), f"Tab order is {cycle}"  # ...in this order

    for _ in range(2 * len(set(cycle)) + 2):  # Tab round to the composer
        if (page.evaluate(FOCUSED) or {}).get("name") == "textarea:Message":
            break
        page.keyboard.press("Tab")
    expect(chat.message_box).to_be_focused()
    text = words(200, "key")
    page.keyboard.insert_text(text)
    page.keyboard.press("Enter")
    answer = chat.answers.nth(1)
    expect(answer).to_contain_text("key3")
    page.keyboard.press("Escape")  # stops the answer; focus stays in the composer
    expect(answer).to_have_attribute("data-status", "stopped")
    assert 0 < len(answer_text(answer).split()) < 200
    expect(chat.message_box).to_be_focused()


def test_the_readme_screenshots_can_be_made(page: Page, tmp_path: Path) -> None:
    """tests/browser/screenshot.py keeps working: two 1280x800 PNGs, light and dark."""
    light, dark = capture(page, tmp_path)
    for path in (light, dark):
        png = path.read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", png[16:24]) == (1280, 800)
    assert light.read_bytes() != dark.read_bytes()
