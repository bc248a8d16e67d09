"""Attachments in a real browser (#11): an image attached without JavaScript shows
as a thumbnail; with JavaScript, chips with Remove; a hostile HTML file named `.png`
is only ever a download and never runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests import hostile_files as hostile
from tests.browser.helpers import Chat, Watch

pytestmark = pytest.mark.browser


def test_an_image_attached_without_javascript_shows_as_a_thumbnail(
    plain_chat: Chat, tmp_path: Path
) -> None:
    photo = tmp_path / "holiday.png"
    photo.write_bytes(hostile.png(800, 600))
    chat = plain_chat
    page = chat.page
    chat.message_box.fill("what is in this picture?")
    page.get_by_label("Attach files").set_input_files(photo)
    chat.send_button.click()
    chat.conversation_id()
    thumbnail = chat.questions.first.get_by_role("img", name="holiday.png")
    expect(thumbnail).to_be_visible()
    expect(thumbnail).to_have_attribute("loading", "lazy")
    assert thumbnail.evaluate("img => img.naturalWidth") == 800  # it loaded


def test_chips_with_remove_and_a_hostile_html_png_never_runs(
    chat: Chat, page: Page, watch: Watch, tmp_path: Path
) -> None:
    evil = tmp_path / "cat.png"
    evil.write_bytes(hostile.HTML_PAGE)
    other = tmp_path / "other.txt"
    other.write_text("left out")
    chat.open()
    page.get_by_label("Attach files").set_input_files([evil, other])
    chips = page.locator("#attached li.chip")
    expect(chips).to_have_count(2)
    removing = chips.filter(has_text="other.txt").get_by_role("button", name="Remove", exact=True)
    expect(removing).to_have_accessible_description("other.txt")
    removing.click()
    expect(chips).to_have_count(1)
    expect(chips.first).to_contain_text("cat.png")

    chat.ask("is this a cat?")
    question = chat.questions.first
    expect(question.get_by_role("img")).to_have_count(0)  # it is text, not an image
    link = question.get_by_role("link", name="cat.png")
    expect(link).to_be_visible()
    expect(question).not_to_contain_text("other.txt")
    expect(chips).to_have_count(0)  # sent: the composer is empty again

    title = page.title()
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "cat.png"
    assert page.title() == title != "html-ran"
    assert watch.dialogs == []


def test_drop_and_paste_add_chips_and_a_refused_file_keeps_the_text_and_the_chips(
    chat: Chat, page: Page
) -> None:
    chat.open()
    chat.message_box.fill("read these carefully")
    composer = page.locator("#composer")
    dropped = page.evaluate_handle(
        """() => { const d = new DataTransfer();
        d.items.add(new File(["dropped text"], "dropped.txt", {type: "text/plain"}));
        return d; }"""
    )
    composer.dispatch_event("drop", {"dataTransfer": dropped})
    chat.message_box.evaluate(
        """box => { const d = new DataTransfer();
        d.items.add(new File([new Uint8Array([0, 1, 2, 0, 255])], "blob.bin"));
        box.dispatchEvent(new ClipboardEvent("paste", {clipboardData: d, bubbles: true})); }"""
    )
    chips = page.locator("#attached li.chip")
    expect(chips).to_have_count(2)
    expect(chips.nth(0)).to_contain_text("dropped.txt")
    expect(chips.nth(1)).to_contain_text("blob.bin")
    expect(chat.message_box).to_have_value("read these carefully")  # no file name pasted

    chat.send_button.click()
    expect(chat.error).to_contain_text("hxchat cannot read binary files.")
    expect(chat.message_box).to_have_value("read these carefully")
    expect(chips).to_have_count(2)
    expect(chat.questions).to_have_count(0)


def test_a_file_over_the_size_limit_is_an_error_beside_the_composer(
    chat: Chat, page: Page, tmp_path: Path
) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * (21 * 1_048_576))  # the limit is 20 MB
    chat.open()
    chat.message_box.fill("a question about a large log")
    page.get_by_label("Attach files").set_input_files(big)
    chat.send_button.click()
    expect(chat.error).to_contain_text("The file is larger than 20 MB.")
    expect(chat.message_box).to_have_value("a question about a large log")
    expect(page.locator("#attached li.chip")).to_contain_text("big.txt")
    expect(chat.questions).to_have_count(0)
