"""Share links and feedback in a real browser (#12): share a conversation and open the
link in a fresh profile, rate an answer and watch `aria-pressed` flip, copy an answer's
Markdown and a link to the clipboard; then the same with JavaScript switched off, where
every control is a plain form (and the Copy buttons, which need a script, are absent).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.browser.helpers import (
    VIEWPORT,
    Chat,
    Watch,
    answer_text,
    new_context,
    send_without_script,
    until_answered,
)
from tests.servers import Server

pytestmark = pytest.mark.browser


def rating(answer: Locator, name: str) -> Locator:
    return answer.get_by_role("button", name=name, exact=True)


def clipboard(page: Page) -> str:
    return str(page.evaluate("() => navigator.clipboard.readText()"))


def test_share_copy_the_link_and_open_it_in_a_fresh_profile(
    chat: Chat, page: Page, context: BrowserContext, browser: Browser, server: Server
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    chat.open()
    chat.ask("what the **link** shows")
    page.evaluate("() => { window.__sameDocument = true; }")  # gone after any full load

    page.get_by_role("button", name="Share", exact=True).click()
    field = page.get_by_role("textbox", name="Share link")
    expect(field).to_have_value(re.compile(re.escape(f"{server.url}/s/") + r"[\w-]{32}$"))
    link = field.input_value()
    page.get_by_role("button", name="Copy link").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert clipboard(page) == link
    assert page.evaluate("() => window.__sameDocument === true"), "the page was reloaded"

    chat.ask("said after sharing")
    watch = Watch()
    fresh = new_context(browser, server, watch)  # someone else, who has never been here
    try:
        viewer = fresh.new_page()
        assert (response := viewer.goto(link)) is not None and response.status == 200
        expect(viewer).to_have_title("what the link shows")
        shown = viewer.locator("article[data-role=assistant]")
        expect(shown).to_have_count(1)
        expect(shown.locator("strong")).to_have_text("link")
        expect(viewer.get_by_text("said after sharing")).to_have_count(0)
        expect(viewer.get_by_role("textbox")).to_have_count(0)  # no composer
        expect(viewer.get_by_role("button")).to_have_count(0)
        expect(viewer.get_by_role("navigation")).to_have_count(0)
        assert viewer.locator('meta[name="robots"]').get_attribute("content") == "noindex"

        page.get_by_role("button", name="Stop sharing").click()
        expect(page.get_by_role("button", name="Share", exact=True)).to_be_visible()
        expect(page.get_by_role("textbox", name="Share link")).to_have_count(0)
        gone = viewer.goto(link)
        assert gone is not None and gone.status == 404
        assert not watch.problems(), watch.problems()
    finally:
        fresh.close()


def test_rate_an_answer_and_copy_its_markdown(
    chat: Chat, page: Page, context: BrowserContext, server: Server
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    chat.open()
    markdown = "Some **bold**, a [link](https://example.com/) & `<code>`"
    answer = chat.ask(markdown)
    page.evaluate("() => { window.__sameDocument = true; }")
    good, bad = rating(answer, "Good answer"), rating(answer, "Bad answer")
    expect(good).to_have_attribute("aria-pressed", "false")
    expect(bad).to_have_attribute("aria-pressed", "false")

    good.click()
    expect(rating(answer, "Good answer")).to_have_attribute("aria-pressed", "true")
    rating(answer, "Bad answer").click()
    expect(rating(answer, "Bad answer")).to_have_attribute("aria-pressed", "true")
    expect(rating(answer, "Good answer")).to_have_attribute("aria-pressed", "false")
    assert page.evaluate("() => window.__sameDocument === true"), "the page was reloaded"

    answer.get_by_role("button", name="Copy", exact=True).click()
    expect(answer.get_by_role("button", name="Copied", exact=True)).to_be_visible()
    assert clipboard(page) == markdown

    page.reload()
    answer = chat.answers.first
    expect(rating(answer, "Bad answer")).to_have_attribute("aria-pressed", "true")
    rating(answer, "Bad answer").click()  # pressed again: off
    expect(rating(answer, "Bad answer")).to_have_attribute("aria-pressed", "false")
    expect(rating(answer, "Good answer")).to_have_attribute("aria-pressed", "false")


def test_the_same_without_javascript(plain_chat: Chat, browser: Browser, server: Server) -> None:
    chat = plain_chat
    page = chat.page
    cid = send_without_script(chat, "plain forms only")
    until_answered(page)
    answer = chat.answers.first
    expect(answer.get_by_role("button", name="Copy", exact=True)).to_be_hidden()

    rating(answer, "Good answer").click()
    expect(page).to_have_url(f"{server.url}/c/{cid}#{answer.get_attribute('id')}")
    answer = chat.answers.first
    expect(rating(answer, "Good answer")).to_have_attribute("aria-pressed", "true")
    expect(rating(answer, "Bad answer")).to_have_attribute("aria-pressed", "false")

    page.get_by_role("button", name="Share", exact=True).click()
    link = page.get_by_role("textbox", name="Share link").input_value()
    assert link.startswith(f"{server.url}/s/")
    expect(page.get_by_role("button", name="Copy link")).to_be_hidden()

    other = browser.new_context(viewport=VIEWPORT, java_script_enabled=False)
    try:
        viewer = other.new_page()
        assert (response := viewer.goto(link)) is not None and response.status == 200
        expect(viewer.locator("article[data-role=assistant] .answer")).to_have_text(
            "plain forms only"
        )
        expect(viewer.get_by_role("button")).to_have_count(0)

        page.get_by_role("button", name="Stop sharing").click()
        expect(page.get_by_role("button", name="Share", exact=True)).to_be_visible()
        gone = viewer.goto(link)
        assert gone is not None and gone.status == 404
    finally:
        other.close()
    assert answer_text(chat.answers.first) == "plain forms only"
