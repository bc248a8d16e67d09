"""Search-using answers in a real browser: the activity line, the sources, Google's chip.

Why a browser: the activity line and the sources arrive as out-of-band swaps on the
SSE stream, and the Search Suggestions chip lives in a sandboxed iframe under its own
Content-Security-Policy; only a browser shows whether a person sees them, and whether
the page's strict policy still holds. Each server is a real `hxchat serve`: one with
`openai:` against a scripted Chat Completions server that searches a (slow) scripted
SearXNG, one with `gemini:` against a scripted Google API (GOOGLE_GEMINI_BASE_URL).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.helpers import Chat, Watch, answer_text, new_context
from tests.helpers import require_chromium
from tests.scripted_gemini import ApiCut, ApiReply, ScriptedGeminiAPI, answer, grounded
from tests.scripted_openai import Reply, Request, Respond, ScriptedOpenAI, Text, ToolCalls, Writer
from tests.scripted_searxng import ScriptedSearxng, Slow, pages_for
from tests.servers import Server, serving

pytestmark = pytest.mark.browser

QUERY = "capital of France"
SEARCHING = f"Searching the web for “{QUERY}”…"
SEARCH_SECONDS = 1.0  # the scripted SearXNG's pause: the activity line shows meanwhile
OPENAI_KEY = "sk-hxchat-FAKE-browser-key-91c3e7"
GOOGLE_KEY = "hxchat-FAKE-google-key-5e28d4"
ANSWER = "Paris is the capital of France."

# Records, in every page, what the first assistant article shows after each change.
TIMELINE_PROBE = """
(() => {
  window.__timeline = [];
  new MutationObserver(() => {
    const a = document.querySelector("article[data-role=assistant]");
    if (!a) return;
    const state = {
      status: a.dataset.status,
      activity: a.querySelector(".activity")?.textContent.trim() ?? "",
      sources: a.querySelectorAll("[data-sources] ol li a").length,
    };
    const last = window.__timeline[window.__timeline.length - 1];
    if (JSON.stringify(last) !== JSON.stringify(state)) window.__timeline.push(state);
  }).observe(document, { childList: true, subtree: true, characterData: true, attributes: true });
})();
"""


def search_then_answer(body: dict[str, Any]) -> Reply:
    """Search for the question; once the tool has answered, cite result [1], slowly."""
    last = body["messages"][-1]
    if last["role"] == "tool":
        return Text(["According to ", "the first result ", "[1], ", ANSWER], delay=0.1)
    return ToolCalls([("web_search", json.dumps({"query": last["content"]}))])


GROUNDED: list[ApiReply] = [answer(["Paris ", "is the capital ", "of France."], grounded())]


class GeminiByQuestion(ScriptedGeminiAPI):
    """Google's API on loopback; the first question that begins with "Please fail" is
    cut off after a few words, every other one gets a grounded answer with a chip."""

    def __init__(self) -> None:
        super().__init__(GROUNDED)
        self.failed = False

    async def handle(self, request: Request, writer: Writer) -> None:
        if request.method == "POST" and "GenerateContent" in request.path:
            parts = request.json()["contents"][-1]["parts"]
            question = "".join(str(part.get("text", "")) for part in parts)
            failing = question.startswith("Please fail") and not self.failed
            self.failed = self.failed or failing
            self.replies = [ApiCut(["Paris ", "is "])] if failing else GROUNDED
        await super().handle(request, writer)


@pytest.fixture(scope="module")
def search_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`hxchat serve` with `openai:test-model` searching a scripted SearXNG."""
    require_chromium()
    workdir = tmp_path_factory.mktemp("search-server")
    with (
        ScriptedOpenAI([Respond(search_then_answer)]) as model,
        ScriptedSearxng([Slow(SEARCH_SECONDS)]) as searx,
    ):
        env = {
            "HXCHAT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'hxchat.db'}",
            "HXCHAT_MODEL": "openai:test-model",
            "OPENAI_BASE_URL": model.base_url,
            "OPENAI_API_KEY": OPENAI_KEY,
            "HXCHAT_SEARCH": "searxng",
            "HXCHAT_SEARXNG_URL": searx.base_url,
        }
        with serving(workdir, env) as server:
            yield server


@pytest.fixture(scope="module")
def gemini_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`hxchat serve` with `gemini:gemini-2.5-flash` on a scripted Google API."""
    require_chromium()
    workdir = tmp_path_factory.mktemp("gemini-server")
    with GeminiByQuestion() as api:
        env = {
            "HXCHAT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'hxchat.db'}",
            "HXCHAT_MODEL": "gemini:gemini-2.5-flash",
            "GOOGLE_API_KEY": GOOGLE_KEY,
            "GOOGLE_GEMINI_BASE_URL": api.base_url,
            "GOOGLE_GENAI_USE_VERTEXAI": "false",
        }
        with serving(workdir, env) as server:
            yield server


def watched_chat(browser: Browser, server: Server, watch: Watch) -> Iterator[Chat]:
    """A fresh profile on `server`; its pages must raise no CSP violation or error."""
    ctx = new_context(browser, server, watch)
    try:
        yield Chat(ctx.new_page())
        problems = watch.problems()
        assert not problems, "the page misbehaved:\n" + "\n".join(problems)
    finally:
        ctx.close()
    log = server.log()
    assert "Traceback" not in log
    assert OPENAI_KEY not in log and GOOGLE_KEY not in log


@pytest.fixture
def search_chat(browser: Browser, search_server: Server, watch: Watch) -> Iterator[Chat]:
    yield from watched_chat(browser, search_server, watch)


@pytest.fixture
def gemini_chat(browser: Browser, gemini_server: Server, watch: Watch) -> Iterator[Chat]:
    yield from watched_chat(browser, gemini_server, watch)


def test_search_activity_then_numbered_sources(search_chat: Chat) -> None:
    chat, page = search_chat, search_chat.page
    page.add_init_script(TIMELINE_PROBE)
    chat.open()
    answer = chat.send(QUERY)
    activity = answer.locator("p.activity")
    links = answer.locator("[data-sources] ol li a")
    expect(activity).to_have_text(SEARCHING)
    expect(activity).to_be_visible()
    expect(links).to_have_count(3)
    expect(answer).to_have_attribute("data-status", "complete")

    pages = pages_for(QUERY)
    expect(links).to_have_text([row["title"] for row in pages])
    assert [link.get_attribute("href") for link in links.all()] == [row["url"] for row in pages]
    assert answer_text(answer) == f"According to the first result [1], {ANSWER}"
    expect(answer.locator("p.activity")).to_have_count(0)

    timeline: list[dict[str, Any]] = page.evaluate("() => window.__timeline")
    searching = next(i for i, s in enumerate(timeline) if s["activity"] == SEARCHING)
    assert timeline[searching] == {"status": "streaming", "activity": SEARCHING, "sources": 0}
    listed = next(i for i, s in enumerate(timeline) if s["sources"] == 3)
    assert listed > searching
    assert timeline[listed]["status"] == "streaming"  # the sources came before the end
    assert timeline[-1] == {"status": "complete", "activity": "", "sources": 3}

    page.reload()  # the sources are stored with the answer
    answer = chat.answers.first
    expect(answer).to_have_attribute("data-status", "complete")
    expect(answer.locator("[data-sources] ol li a")).to_have_text([row["title"] for row in pages])


def test_gemini_sources_and_search_suggestions_chip(gemini_chat: Chat) -> None:
    chat, page = gemini_chat, gemini_chat.page
    chat.open()
    answer = chat.ask("What is the capital of France?")
    assert answer_text(answer) == ANSWER
    expect(answer.locator("[data-sources] ol li a")).to_have_text(
        ["Paris - Wikipedia", "France facts"]
    )
    for _visit in range(2):  # as streamed, then after a reload: the chip is stored
        frame = answer.locator("iframe.search-suggestions")
        expect(frame).to_have_attribute("sandbox", "allow-popups allow-popups-to-escape-sandbox")
        frame.scroll_into_view_if_needed()
        chip = answer.frame_locator("iframe.search-suggestions").locator("a.chip")
        expect(chip).to_have_text("capital of France")
        expect(chip).to_have_css("border-radius", "16px")  # Google's inline styles apply
        page.reload()
        answer = chat.answers.first


def test_gemini_error_shows_the_reason_and_retry_works(gemini_chat: Chat) -> None:
    chat = gemini_chat
    chat.open()
    answer = chat.send("Please fail this time: what is the capital of France?")
    expect(answer).to_have_attribute("data-status", "error")
    note = answer.locator(".note")
    expect(note).to_contain_text("The model did not answer: ")
    expect(note).to_contain_text("cut off in the middle of the answer")
    assert answer_text(answer) == "Paris is"  # the partial answer is kept

    answer.get_by_role("button", name="Retry").click()
    expect(answer).to_have_attribute("data-status", "complete")
    expect(chat.answers).to_have_count(1)
    assert answer_text(answer) == ANSWER
    expect(answer.get_by_role("button", name="Retry")).to_have_count(0)
