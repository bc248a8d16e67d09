"""The settings page's import and export in a real browser (#12): a ChatGPT export
chosen in the file picker and imported with JavaScript off (a plain form,
POST-redirect-GET), the conversation opened from the sidebar, a cut-off file refused
next to the form, and `Export all` downloading what was imported; then the same form
with JavaScript on, under the page's CSP."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import BrowserContext, FilePayload, Page, expect

from tests.chatgpt_export import ChatGptConversation

pytestmark = pytest.mark.browser


def chatgpt_file(title: str) -> FilePayload:
    trip = ChatGptConversation(title)
    question = trip.say(trip.root, "user", "Three sights in Lisbon?")
    trip.say(question, "assistant", "Belém Tower, Alfama, LX Factory.", model="gpt-4o")
    answer = trip.say(question, "assistant", "Tram 28, Alfama, Belém.", model="gpt-4o")
    data = json.dumps([trip.as_json(answer)]).encode()
    return {"name": "conversations.json", "mimeType": "application/json", "buffer": data}


def test_import_a_chatgpt_export_without_javascript(no_script: BrowserContext) -> None:
    page = no_script.new_page()
    page.goto("/")
    page.get_by_role("navigation", name="Conversations").get_by_role(
        "link", name="Settings"
    ).click()
    expect(page.get_by_role("heading", name="Settings", level=1)).to_be_visible()

    page.get_by_label("Conversations file").set_input_files(
        {"name": "conversations.json", "mimeType": "application/json", "buffer": b'[{"mapping": {'}
    )
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("alert")).to_contain_text("it looks cut off")

    page.get_by_label("Conversations file").set_input_files(chatgpt_file("Trip to Lisbon"))
    page.get_by_role("button", name="Import").click()
    expect(page).to_have_url("/settings?imported=1#import-heading")
    expect(page.get_by_role("status")).to_have_text(
        "Imported 1 conversation; they are in your conversation list."
    )

    with page.expect_download() as download:
        page.get_by_role("link", name="Export all").click()
    exported = json.loads(download.value.path().read_text(encoding="utf-8"))
    assert [c["title"] for c in exported["conversations"]] == ["Trip to Lisbon"]
    assert len(exported["conversations"][0]["messages"]) == 3  # both versions of the answer

    page.get_by_role("link", name="Back to the chat").click()
    page.get_by_role("navigation", name="Conversations").get_by_role(
        "link", name="Trip to Lisbon"
    ).click()
    transcript = page.get_by_role("log")
    question = transcript.locator("article[data-role=user] .content")
    expect(question).to_have_text(["Three sights in Lisbon?"])
    answer = transcript.locator("article[data-role=assistant]")
    expect(answer).to_contain_text("Tram 28, Alfama, Belém.")
    expect(answer.locator(".versions")).to_contain_text("2 / 2")


def test_the_import_form_with_javascript(page: Page) -> None:
    page.goto("/settings")
    page.get_by_label("Conversations file").set_input_files(chatgpt_file("Weekend in Porto"))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("status")).to_contain_text("Imported 1 conversation")
    page.goto("/")
    expect(
        page.get_by_role("navigation", name="Conversations").get_by_role(
            "link", name="Weekend in Porto"
        )
    ).to_be_visible()
