"""The keyboard shortcuts (#10), in a real browser under the strict CSP: Escape stops the
answer being written, Ctrl+Shift+O starts a new chat, ArrowUp in an empty composer
edits the last message; each says what it did in the page's live region."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import Chat, answer_text, words

pytestmark = pytest.mark.browser


def announced(page: Page) -> str:
    """What the live region says now (screen readers read it out when it changes)."""
    region = page.locator("#announcer")
    expect(region).to_have_attribute("aria-live", "polite")
    return region.inner_text().strip()


def test_escape_stops_the_answer_wherever_the_focus_is(chat: Chat, page: Page) -> None:
    chat.open()
    text = words(200, "esc")
    answer = chat.send(text)
    expect(answer).to_contain_text("esc5")
    chat.transcript.focus()  # not in the composer: reading the answer as it comes
    page.keyboard.press("Escape")
    expect(answer).to_have_attribute("data-status", "stopped")
    kept = answer_text(answer).split()
    assert 0 < len(kept) < 200 and kept == text.split()[: len(kept)]
    expect(page.locator("#announcer")).to_have_text("Answer stopped")
    # With nothing running, Escape changes nothing.
    page.keyboard.press("Escape")
    expect(answer).to_have_attribute("data-status", "stopped")


def test_control_shift_o_starts_a_new_chat(chat: Chat, page: Page) -> None:
    chat.open()
    chat.ask("an old conversation")
    cid = chat.conversation_id()
    chat.transcript.focus()
    page.keyboard.press("Control+Shift+O")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(chat.answers).to_have_count(0)
    expect(chat.message_box).to_be_focused()
    expect(page.locator("#announcer")).to_have_text("New chat")
    assert announced(page) == "New chat"
    expect(chat.nav_link(cid)).to_be_visible()  # the old one is a click away


def test_arrow_up_in_an_empty_composer_edits_the_last_message(chat: Chat, page: Page) -> None:
    chat.open()
    chat.ask("the first question")
    chat.ask("the last question")
    expect(chat.message_box).to_be_focused()

    chat.message_box.fill("a draft")
    page.keyboard.press("ArrowUp")  # the composer has text: the caret moves, nothing else
    expect(page.get_by_role("textbox", name="Edited message")).to_have_count(0)

    chat.message_box.fill("")
    page.keyboard.press("ArrowUp")
    field = page.get_by_role("textbox", name="Edited message")
    expect(field).to_have_value("the last question")
    expect(field).to_be_focused()
    expect(chat.questions.last.get_by_role("button", name="Save")).to_be_visible()
    expect(page.locator("#announcer")).to_have_text("Editing your last message")

    field.fill("the last question, edited")
    page.get_by_role("button", name="Save").click()
    answer = chat.answers.last
    expect(answer.locator(".answer")).to_have_text("the last question, edited")
    expect(answer).to_have_attribute("data-status", "complete")
    expect(chat.questions.last.locator(".versions")).to_contain_text("2 / 2")
