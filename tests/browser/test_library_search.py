"""Searching one's conversations in a real browser (#12): type in `Search conversations`,
see the results replace the list with the words marked, open one and land on the
message; then the same with JavaScript switched off, where the field is a plain form.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import Chat, send_without_script, until_answered

pytestmark = pytest.mark.browser

RESULT = re.compile(r"/c/([0-9a-f]+)#msg-(\d+)$")


def test_search_as_you_type_and_open_a_result(chat: Chat, page: Page) -> None:
    chat.open()
    answer = chat.ask("where do aardvarks sleep")
    answer_id = answer.get_attribute("id") or ""
    cid = chat.conversation_id()
    page.get_by_role("link", name="New chat").click()
    chat.ask("something about otters")
    expect(chat.nav.locator("#conversation-list a")).to_have_count(2)  # the two conversations

    field = page.get_by_role("searchbox", name="Search conversations")
    field.press_sequentially("aardv")  # keyup after keyup: htmx asks once typing pauses
    results = chat.nav.locator("#conversation-list a")
    expect(results).to_have_count(2)  # the question and its answer (the echo)
    expect(results.first.locator("mark")).to_have_text(["aardvarks"] * 2)  # title, snippet
    expect(chat.nav).not_to_contain_text("otters")
    assert page.url.endswith("/c/" + chat.conversation_id())  # no page load: same address

    chat.nav.locator(f'a[href="/c/{cid}#{answer_id}"]').click()
    expect(page).to_have_url(re.compile(f"/c/{cid}#{answer_id}$"))
    expect(page.locator(f"#{answer_id}")).to_be_in_viewport()
    expect(page.locator(f"#{answer_id}")).to_contain_text("where do aardvarks sleep")

    # Escape clears the field, and the conversations are listed again.
    field = page.get_by_role("searchbox", name="Search conversations")
    field.fill("aardv")
    field.press("Escape")
    expect(field).to_have_value("")
    expect(chat.nav.locator("#conversation-list a")).to_have_count(2)
    expect(chat.nav).to_contain_text("something about otters")


def test_the_same_without_javascript(plain_chat: Chat) -> None:
    chat = plain_chat
    page = chat.page
    cid = send_without_script(chat, "the pangolin and its scales")
    until_answered(page)

    field = page.get_by_role("searchbox", name="Search conversations")
    field.fill("pangolin")
    field.press("Enter")
    expect(page).to_have_url(re.compile(r"/search\?q=pangolin$"))
    expect(page.get_by_role("searchbox", name="Search conversations")).to_have_value("pangolin")
    results = chat.nav.locator("#conversation-list a")
    expect(results).to_have_count(2)
    expect(results.first.locator("mark")).to_have_text(["pangolin"] * 2)
    href = results.last.get_attribute("href") or ""
    found = RESULT.search(href)
    assert found is not None and found.group(1) == cid, href

    results.last.click()
    expect(page).to_have_url(re.compile(re.escape(href) + "$"))
    expect(page.locator(f"#msg-{found.group(2)}")).to_contain_text("pangolin")
