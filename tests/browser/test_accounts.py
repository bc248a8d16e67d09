"""Password mode in a real browser: sign in through the page, chat, sign out; and the
sign-in and settings pages are axe-core clean (as the chat page is, see
test_accessibility.py) and raise no CSP violation."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import ECHO_DELAY_MS, Chat
from tests.servers import Server, hxchat_environment, serving

pytestmark = pytest.mark.browser

PASSWORD = "a browser password"
AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1.min.js"
RUN_AXE = """
async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary}`),
  }));
}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`hxchat serve` in password mode with one account, `alice` (replaces the
    conftest's server for this module, so `page` and `chat` are on this one)."""
    workdir = tmp_path_factory.mktemp("accounts-server")
    env = {
        "HXCHAT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'hxchat.db'}",
        "HXCHAT_ECHO_DELAY_MS": str(ECHO_DELAY_MS),
        "HXCHAT_AUTH": "password",
    }
    added = subprocess.run(
        [sys.executable, "-m", "hxchat", "users", "add", "alice", "--password-stdin"],
        cwd=workdir,
        env=hxchat_environment(env),
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    with serving(workdir, env) as s:
        yield s


def serious_violations(page: Page, where: str) -> list[str]:
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    return [
        f"{where}: {v['id']} ({v['impact']}): {v['help']}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def sign_in(page: Page, password: str = PASSWORD) -> None:
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


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
