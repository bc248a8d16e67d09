"""The library in a real browser (#12, #10): rename, pin and delete conversations from
the list, set a conversation's instructions, and see the model's title arrive in the
sidebar and the heading without a reload; then the same with JavaScript switched off,
where every control is a plain form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.helpers import Chat, Watch, new_context, send_without_script
from tests.helpers import require_chromium
from tests.scripted_openai import Completion, Respond, ScriptedOpenAI, Text
from tests.servers import Server, serving

pytestmark = pytest.mark.browser

SAME_DOCUMENT = "() => window.__sameDocument === true"  # gone after any full load


def item(chat: Chat, title: str) -> Locator:
    """The list item of the conversation titled `title`."""
    link = chat.page.get_by_role("link", name=title, exact=True)  # within the item
    return chat.nav.get_by_role("listitem").filter(has=link)


def titles(chat: Chat) -> list[str]:
    return [t.strip() for t in chat.nav.locator("#conversation-list a").all_inner_texts()]


def test_rename_pin_and_delete_from_the_list(chat: Chat, page: Page, watch: Watch) -> None:
    chat.open()
    chat.ask("the older one")
    chat.nav.get_by_role("link", name="New chat").click()
    chat.ask("the newer one")
    current = chat.conversation_id()
    page.evaluate("() => { window.__sameDocument = true; }")
    assert titles(chat) == ["the newer one", "the older one"]

    # Rename the one shown: the list and the heading change in place.
    item(chat, "the newer one").get_by_role("button", name="Rename").click()
    field = chat.nav.get_by_role("textbox", name="Title")
    expect(field).to_have_value("the newer one")
    expect(field).to_be_focused()
    field.fill("Renamed <b>here</b>")
    field.press("Enter")
    expect(chat.nav.get_by_role("link", name="Renamed <b>here</b>")).to_have_count(1)
    expect(page.get_by_role("heading", level=1)).to_have_text("Renamed <b>here</b>")
    expect(page).to_have_title("Renamed <b>here</b>")

    # Cancel a rename: nothing changes.
    item(chat, "the older one").get_by_role("button", name="Rename").click()
    chat.nav.get_by_role("link", name="Cancel").click()
    expect(chat.nav.get_by_role("textbox", name="Title")).to_have_count(0)

    # Pin the older one: it comes first, and its button now unpins.
    older = item(chat, "the older one")
    older.get_by_role("button", name="Pin").click()
    expect(chat.nav.locator("#conversation-list a").first).to_have_text("the older one")
    unpin = item(chat, "the older one").get_by_role("button", name="Unpin")
    expect(unpin).to_be_focused()  # the focus stays where it was, in the new list
    unpin.click()
    expect(chat.nav.locator("#conversation-list a").first).to_have_text("Renamed <b>here</b>")
    item(chat, "the older one").get_by_role("button", name="Pin").click()

    # Delete the other one: asked first, then gone; this page stays.
    watch.accept_dialogs = True
    item(chat, "the older one").get_by_role("button", name="Delete").click()
    expect(chat.nav.get_by_role("link", name="the older one")).to_have_count(0)
    assert watch.dialogs == ["Delete this conversation?"]
    assert chat.conversation_id() == current
    assert page.evaluate(SAME_DOCUMENT), "the page was reloaded"

    page.reload()
    assert titles(chat) == ["Renamed <b>here</b>"]


def test_instructions_are_saved_in_place(chat: Chat, page: Page) -> None:
    chat.open()
    chat.ask("hello")
    page.evaluate("() => { window.__sameDocument = true; }")
    field = page.get_by_role("textbox", name="Instructions")
    field.fill("Answer in French.")
    page.get_by_role("button", name="Apply instructions").click()
    expect(page.locator("#instructions-form").get_by_role("status")).to_have_text("Saved.")
    assert page.evaluate(SAME_DOCUMENT), "the page was reloaded"
    expect(chat.message_box).to_be_editable()  # the composer is untouched
    page.reload()
    expect(page.get_by_role("textbox", name="Instructions")).to_have_value("Answer in French.")


# -- without JavaScript -----------------------------------------------------------------


def test_the_same_without_javascript(plain_chat: Chat) -> None:
    chat = plain_chat
    page = chat.page
    send_without_script(chat, "the older one")
    chat.open()
    send_without_script(chat, "the newer one")
    current = chat.conversation_id()

    item(chat, "the older one").get_by_role("button", name="Rename").click()
    field = page.get_by_role("textbox", name="Title")
    expect(field).to_have_value("the older one")
    field.fill("Old, renamed")
    page.get_by_role("button", name="Save").click()
    assert chat.conversation_id() == current  # back on the page it was on
    assert titles(chat) == ["the newer one", "Old, renamed"]

    item(chat, "Old, renamed").get_by_role("button", name="Pin").click()
    assert titles(chat) == ["Old, renamed", "the newer one"]
    expect(item(chat, "Old, renamed").get_by_role("button", name="Unpin")).to_have_count(1)

    page.get_by_role("textbox", name="Instructions").fill("Be brief.")
    page.get_by_role("button", name="Apply instructions").click()
    expect(page.get_by_role("textbox", name="Instructions")).to_have_value("Be brief.")

    item(chat, "the newer one").get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"^http://[^/]+/$"))  # the one shown is gone
    assert titles(chat) == ["Old, renamed"]


# -- the model's title, without a reload --------------------------------------------------


def _reply(body: dict[str, Any]) -> Any:
    if body.get("stream"):
        return Text(["Columns ", "are added ", "with op.add_column."], delay=0.05)
    return Completion("“Adding columns with Alembic”", delay=1.0)


@pytest.fixture(scope="module")
def titling_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`hxchat serve` with an OpenAI-compatible model that writes titles (slowly)."""
    require_chromium()
    workdir = tmp_path_factory.mktemp("titles-server")
    with ScriptedOpenAI([Respond(_reply)]) as model:
        env = {
            "HXCHAT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'hxchat.db'}",
            "HXCHAT_MODEL": "openai:scripted",
            "HXCHAT_SEARCH": "none",
            "OPENAI_BASE_URL": model.base_url,
        }
        with serving(workdir, env) as server:
            yield server


def test_the_models_title_arrives_without_a_reload(
    browser: Browser, titling_server: Server
) -> None:
    watch = Watch()
    ctx = new_context(browser, titling_server, watch)
    try:
        page = ctx.new_page()
        chat = Chat(page)
        chat.open()
        page.evaluate("() => { window.__sameDocument = true; }")
        chat.ask("how do I add a column?")
        expect(page.get_by_role("heading", level=1)).to_have_text("how do I add a column?")
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Adding columns with Alembic", timeout=15_000
        )
        expect(chat.nav.get_by_role("link", name="Adding columns with Alembic")).to_have_count(1)
        expect(page).to_have_title("Adding columns with Alembic")
        assert page.evaluate(SAME_DOCUMENT), "the page was reloaded"
        assert not watch.problems(), watch.problems()
    finally:
        ctx.close()
