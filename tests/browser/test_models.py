"""Several models in a real browser (#10): pick a model in the composer, send, and see
the answer say which model wrote it (`data-model`, its footer); reload and the
composer shows the conversation's model. Then the same with JavaScript switched off,
where the choice is a plain field of the composer's form and the page of a running
answer reloads itself until the answer has ended."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import ECHO_DELAY_MS, Chat, send_without_script
from tests.scripted_openai import Respond, ScriptedOpenAI, Text
from tests.servers import Server, serving

pytestmark = pytest.mark.browser

OTHER = "openai:scripted"


def _named(body: dict[str, Any]) -> Text:
    return Text(["Answered ", "by ", str(body["model"]), "."], delay=0.02)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`hxchat serve` offering echo (the default) and what a scripted OpenAI-compatible
    endpoint lists."""
    workdir = tmp_path_factory.mktemp("models-server")
    with ScriptedOpenAI([Respond(_named)]) as endpoint:
        env = {
            "HXCHAT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'hxchat.db'}",
            "HXCHAT_ECHO_DELAY_MS": str(ECHO_DELAY_MS),
            "HXCHAT_MODELS": "openai:*",
            "HXCHAT_SEARCH": "none",
            "OPENAI_BASE_URL": endpoint.base_url,
        }
        with serving(workdir, env) as s:
            yield s


def test_pick_a_model_send_and_see_which_model_answered(chat: Chat, page: Page) -> None:
    chat.open()
    picker = page.get_by_role("combobox", name="Model")
    expect(picker).to_have_value("echo")
    picker.select_option(OTHER)
    answer = chat.ask("who are you?")
    expect(answer).to_have_attribute("data-model", OTHER)
    expect(answer.locator("footer")).to_contain_text("scripted (openai)")
    expect(answer.locator(".answer")).to_have_text("Answered by scripted.")

    chat.conversation_id()
    page.reload()
    expect(page.get_by_role("combobox", name="Model")).to_have_value(OTHER)
    page.get_by_role("combobox", name="Model").select_option("echo")
    answer = chat.ask("and now?")
    expect(answer).to_have_attribute("data-model", "echo")
    expect(chat.answers.first).to_have_attribute("data-model", OTHER)


def test_the_same_without_javascript(plain_chat: Chat) -> None:
    chat = plain_chat
    page = chat.page
    page.get_by_role("combobox", name="Model").select_option(OTHER)
    send_without_script(chat, "who are you?")
    # Nothing streams in without JavaScript: the page reloads itself until it ended.
    answer = chat.answers.first
    expect(answer).to_have_attribute("data-status", "complete")
    expect(answer).to_have_attribute("data-model", OTHER)
    expect(answer.locator("footer")).to_contain_text("scripted (openai)")
    expect(page.get_by_role("combobox", name="Model")).to_have_value(OTHER)


def test_regenerate_with_another_model(chat: Chat, page: Page) -> None:
    """An answer's Regenerate offers the models: the new version streams in, written by
    the model chosen, beside the old one (2 / 2); the reloaded page goes on with it."""
    chat.open()
    answer = chat.ask("who are you?")
    expect(answer).to_have_attribute("data-model", "echo")
    first_id = answer.get_attribute("id") or ""
    choice = answer.get_by_role("combobox", name="Regenerate with")
    expect(choice).to_have_value("echo")  # its own model, unless another is chosen
    choice.select_option(OTHER)
    answer.get_by_role("button", name="Regenerate").click()
    answer = chat.answers.first
    expect(answer).not_to_have_id(first_id)
    expect(answer).to_have_attribute("data-status", "complete")
    expect(answer).to_have_attribute("data-model", OTHER)
    expect(answer.locator(".answer")).to_have_text(f"Answered by {OTHER.split(':')[1]}.")
    expect(answer.locator(".versions")).to_contain_text("2 / 2")
    # Its footer as the stream's end shows it: model, tokens, seconds.
    expect(answer.locator("footer .model")).to_have_text(
        re.compile(r"^scripted \(openai\) · 3 tokens · \d+\.\d s$")
    )
    page.reload()
    expect(page.get_by_role("combobox", name="Model")).to_have_value(OTHER)
    expect(chat.answers.first.get_by_role("combobox", name="Regenerate with")).to_have_value(OTHER)


def test_regenerate_with_another_model_without_javascript(plain_chat: Chat) -> None:
    chat = plain_chat
    send_without_script(chat, "who are you?")
    # Nothing streams in without JavaScript: the page reloads itself until it ended.
    expect(chat.answers.first).to_have_attribute("data-status", "complete")
    answer = chat.answers.first
    expect(answer).to_have_attribute("data-model", "echo")
    answer.get_by_role("combobox", name="Regenerate with").select_option(OTHER)
    answer.get_by_role("button", name="Regenerate").click()
    answer = chat.answers.first
    expect(answer).to_have_attribute("data-status", "complete")
    expect(answer).to_have_attribute("data-model", OTHER)
    expect(answer.locator(".versions")).to_contain_text("2 / 2")
    answer.get_by_role("button", name="Previous version").click()
    expect(chat.answers.first).to_have_attribute("data-model", "echo")
    expect(chat.answers.first.locator(".versions")).to_contain_text("1 / 2")
