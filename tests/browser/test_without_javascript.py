"""The page of a running answer with JavaScript switched off, in a real browser (#10):
it reloads itself until the answer has ended (a <noscript> refresh), Stop ends the
answer where it got to, and Retry asks again: plain forms. (A message refused while an
answer runs keeps its text: tests/test_pages.py.)"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import Chat, words

pytestmark = pytest.mark.browser


def test_a_running_answer_reloads_stops_and_retries_without_javascript(
    plain_chat: Chat,
) -> None:
    chat = plain_chat
    page = chat.page
    chat.message_box.fill(words(400, "long"))  # 10 s at the test server's pace
    chat.send_button.click()
    cid = chat.conversation_id()
    answer = chat.answers.first
    expect(answer).to_have_attribute("data-status", "streaming")

    page.wait_for_timeout(2_500)  # the page reloads itself meanwhile; still running
    expect(answer).to_have_attribute("data-status", "streaming")
    chat.stop_button.click()
    expect(page).to_have_url(f"{page.url.split('/c/')[0]}/c/{cid}")
    expect(answer).to_have_attribute("data-status", "stopped")
    kept = len(answer.locator(".answer").inner_text().split())
    assert 0 < kept < 400

    answer.get_by_role("button", name="Retry").click()
    expect(chat.answers.first).to_have_attribute("data-status", "streaming")
    expect(chat.answers.first.locator(".versions")).to_contain_text("2 / 2")
