"""OpenID Connect in a real browser: from the sign-in page to a real provider (started
by the test, `tests/oidc_provider.py`), back to the chat, and out; and `/admin` is
axe-core clean (as the chat page is, see test_accessibility.py) in light and dark."""

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
from tests.oidc_provider import Provider, running_provider
from tests.servers import Server

pytestmark = pytest.mark.browser

PASSWORD = "a browser password"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running_provider(require_nonce=True) as p:
        p.person("sub-ada", preferred_username="ada", email="ada@example.org")
        yield p


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, provider: Provider) -> Iterator[Server]:
    """`hxchat serve` in password,oidc mode with one admin, `root`."""
    workdir = tmp_path_factory.mktemp("oidc-server")
    env = {
        "HXCHAT_AUTH": "password,oidc",
        "HXCHAT_OIDC_ISSUER": provider.issuer,
        "HXCHAT_OIDC_CLIENT_ID": "hxchat-browser",
        "HXCHAT_OIDC_CLIENT_SECRET": "s3cret",
    }
    with server_with_account(workdir, env, "root", PASSWORD, "--admin") as s:
        yield s


def test_sign_in_with_the_provider_chat_and_sign_out(
    page: Page, chat: Chat, provider: Provider
) -> None:
    page.goto("/")
    expect(page).to_have_url("/login?next=%2F")
    found = serious_violations(page, "sign-in page with a provider")
    page.get_by_role("link", name="Sign in with 127.0.0.1").click()
    expect(page).to_have_url(re.compile(re.escape(f"{provider.issuer}/oauth2/authorize?")))
    page.get_by_placeholder("sub").fill("sub-ada")  # the provider's own page
    page.get_by_role("button", name="Authorize").click()
    expect(chat.message_box).to_be_editable()
    expect(page.get_by_text("Signed in as ada")).to_be_visible()
    answer = chat.ask("hello through the provider")
    expect(answer).to_contain_text("hello through the provider")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url("/login")
    page.goto("/api/me")
    assert "Sign in first." in page.content()
    assert not found, "\n".join(found)


def test_a_refused_sign_in_is_a_readable_page(page: Page, provider: Provider) -> None:
    page.goto("/login")
    page.get_by_role("link", name="Sign in with 127.0.0.1").click()
    page.get_by_role("button", name="Deny").click()
    expect(page.get_by_role("alert")).to_contain_text("did not let you sign in")
    expect(page.get_by_role("heading", name="Sign in to hxchat")).to_be_visible()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_admin_page_is_accessible(page: Page, scheme: str) -> None:
    page.emulate_media(color_scheme="dark" if scheme == "dark" else "light")
    page.goto("/login?next=/admin")
    sign_in_with_password(page, "root", PASSWORD)
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    found = serious_violations(page, "admin page")
    assert not found, f"axe ({scheme}):\n" + "\n".join(found)
    if page.get_by_role("button", name="Disable ada").count():
        page.get_by_role("button", name="Disable ada").click()
        expect(page.get_by_role("button", name="Enable ada")).to_be_visible()
        page.get_by_role("button", name="Enable ada").click()
        expect(page.get_by_role("button", name="Disable ada")).to_be_visible()
