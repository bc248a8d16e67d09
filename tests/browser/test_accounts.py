"""Password mode in a real browser: sign in through the page, chat, sign out; and the
sign-in and settings pages are axe-core clean (as the chat page is, see
test_accessibility.py) and raise no CSP violation."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    Chat,
    serious_violations,
    server_with_account,
    sign_in_with_password,
)
from tests.servers import Server

pytestmark = pytest.mark.browser

PASSWORD = "a browser password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`hxchat serve` in password mode with one account, `alice` (replaces the
    conftest's server for this module, so `page` and `chat` are on this one)."""
    workdir = tmp_path_factory.mktemp("accounts-server")
    with server_with_account(workdir, {"HXCHAT_AUTH": "password"}, "alice", PASSWORD) as s:
        yield s


def sign_in(page: Page, password: str = PASSWORD) -> None:
    sign_in_with_password(page, "alice", password)


def test_sign_in_chat_and_sign_out(page: Page, chat: Chat) -> None:
    page.goto("/")
    expect(page).to_have_url("/login?next=%2F")
    sign_in(page, "not the password")
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    sign_in(page)
    expect(chat.message_box).to_be_editable()
    expect(page.get_by_text("Signed in as alice")).to_be_visible()

    answer = chat.ask("hello from the browser")
    expect(answer).to_contain_text("hello from the browser")
    conversation = chat.conversation_id()

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url("/login")
    page.goto(f"/c/{conversation}")
    expect(page).to_have_url(f"/login?next=%2Fc%2F{conversation}")
    sign_in(page)
    expect(page).to_have_url(f"/c/{conversation}")
    expect(chat.answers).to_have_count(1)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_sign_in_and_settings_pages_are_accessible(page: Page, scheme: str) -> None:
    page.emulate_media(color_scheme="dark" if scheme == "dark" else "light")
    page.goto("/login")
    found = serious_violations(page, "sign-in page")
    sign_in(page, "wrong password here")
    expect(page.get_by_role("alert")).to_be_visible()
    found += serious_violations(page, "sign-in page with an error")
    sign_in(page)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    found += serious_violations(page, "chat page signed in")
    page.goto("/settings")
    found += serious_violations(page, "settings page")
    page.get_by_label("Token name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_label("Token", exact=True)).to_have_value(re.compile(r"^hxc_"))
    found += serious_violations(page, "settings page with a new token")
    assert not found, f"axe ({scheme}):\n" + "\n".join(found)
    page.get_by_role("button", name="Revoke laptop").click()
    expect(page.get_by_text("No tokens yet.")).to_be_visible()
