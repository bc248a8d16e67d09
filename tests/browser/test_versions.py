"""Versions in a real browser (#10): edit a question in place and watch the new answer
stream, page back to the old branch with `Previous version`, reload and find the same
path; then the same with JavaScript switched off, where every button is a plain form.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.helpers import (
    Chat,
    answer_text,
    renderings,
    send_without_script,
    until_answered,
    words,
)

pytestmark = pytest.mark.browser


def user_text(article: Locator) -> str:
    return article.locator(".content").inner_text().strip()


def test_edit_streams_a_new_answer_and_previous_version_pages_back(chat: Chat, page: Page) -> None:
    chat.open()
    # The answer's id now: the locator itself would find the new answer after the edit.
    first_id = chat.ask("the first question").get_attribute("id") or ""
    question = chat.questions.first
    cid = chat.conversation_id()
    page.evaluate("() => { window.__sameDocument = true; }")  # gone after any full load

    question.get_by_role("button", name="Edit").click()
    field = question.get_by_role("textbox", name="Edited message")
    expect(field).to_have_value("the first question")
    expect(field).to_be_focused()
    question.get_by_role("button", name="Cancel").click()  # back as it was
    expect(question.locator(".content")).to_have_text("the first question")

    question.get_by_role("button", name="Edit").click()
    edited = words(40, "edit")
    field = question.get_by_role("textbox", name="Edited message")
    field.fill(edited)
    chat.page.get_by_role("button", name="Save").click()

    expect(chat.answers).to_have_count(1)
    answer = chat.answers.first
    expect(answer).not_to_have_id(first_id)
    seen = renderings(answer)
    assert len(seen) > 1, "the new answer did not stream in"
    expect(answer).to_have_attribute("data-status", "complete")
    assert answer_text(answer) == edited
    question = chat.questions.first
    assert user_text(question) == edited
    expect(question.locator(".versions")).to_contain_text("2 / 2")
    expect(question.get_by_role("button", name="Next version")).to_be_disabled()

    question.get_by_role("button", name="Previous version").click()
    question = chat.questions.first
    expect(question.locator(".versions")).to_contain_text("1 / 2")
    assert user_text(question) == "the first question"
    expect(chat.answers).to_have_count(1)
    expect(chat.answers.first.locator(".answer")).to_have_text("the first question")
    assert page.evaluate("() => window.__sameDocument === true"), "the page was reloaded"

    # Regenerate the old answer: a second version of it, streamed, then 2 / 2.
    chat.answers.first.get_by_role("button", name="Regenerate").click()
    answer = chat.answers.first
    expect(answer).to_have_attribute("data-status", "complete")
    expect(answer.locator(".versions")).to_contain_text("2 / 2")

    page.reload()
    expect(chat.message_box).to_be_editable()
    assert chat.conversation_id() == cid
    question = chat.questions.first
    expect(question.locator(".versions")).to_contain_text("1 / 2")
    assert user_text(question) == "the first question"
    expect(chat.answers.first.locator(".versions")).to_contain_text("2 / 2")


def test_the_same_without_javascript(plain_chat: Chat) -> None:
    chat = plain_chat
    page = chat.page
    cid = send_without_script(chat, "the first question")
    until_answered(page)
    expect(chat.answers.first).to_have_attribute("data-status", "complete")

    chat.questions.first.get_by_role("button", name="Edit").click()
    expect(page).to_have_url(f"{page.url.split('?')[0]}?edit={_id(chat.questions.first)}")
    field = page.get_by_role("textbox", name="Edited message")
    expect(field).to_have_value("the first question")
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("textbox", name="Edited message")).to_have_count(0)

    chat.questions.first.get_by_role("button", name="Edit").click()
    page.get_by_role("textbox", name="Edited message").fill("the edited question")
    page.get_by_role("button", name="Save").click()
    assert chat.conversation_id() == cid
    until_answered(page)
    question = chat.questions.first
    assert user_text(question) == "the edited question"
    expect(question.locator(".versions")).to_contain_text("2 / 2")
    expect(chat.answers.first.locator(".answer")).to_have_text("the edited question")

    question.get_by_role("button", name="Previous version").click()
    question = chat.questions.first
    expect(question.locator(".versions")).to_contain_text("1 / 2")
    assert user_text(question) == "the first question"
    expect(chat.answers.first.locator(".answer")).to_have_text("the first question")

    chat.answers.first.get_by_role("button", name="Regenerate").click()
    until_answered(page)
    expect(chat.answers.first.locator(".versions")).to_contain_text("2 / 2")

    page.reload()
    assert user_text(chat.questions.first) == "the first question"
    expect(chat.questions.first.locator(".versions")).to_contain_text("1 / 2")


def _id(article: Locator) -> str:
    return (article.get_attribute("id") or "").removeprefix("msg-")
