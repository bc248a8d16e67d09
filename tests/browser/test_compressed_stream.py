"""An answer streams through a compressed response, frame by frame, in a real Chromium.

Chromium asks for gzip on its own (`Accept-Encoding: gzip, deflate, br, zstd`), so the
page's stream comes gzip-compressed; the answer must still grow on screen while it is
written, not arrive in one piece when the compressor's buffer would fill.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import Chat, answer_text, renderings, words

pytestmark = pytest.mark.browser


def test_an_answer_streams_through_a_gzip_response(chat: Chat, page: Page) -> None:
    chat.open()
    text = words(60)  # 1.5 s at the test server's 25 ms a word: about 30 frames
    with page.expect_response(lambda r: r.url.endswith("/stream")) as streamed:
        answer = chat.send(text)
    response = streamed.value
    assert "gzip" in response.request.all_headers()["accept-encoding"]
    headers = response.all_headers()
    assert headers["content-encoding"] == "gzip"
    assert headers["cache-control"] == "no-cache, no-transform"

    seen = renderings(answer)
    assert len(seen) >= 3, f"expected at least three renderings before the end, saw {seen!r}"
    lengths = [len(s) for s in seen]
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1], seen
    assert all(text.startswith(s) for s in seen), "a rendering is not a start of the answer"
    expect(answer).to_have_attribute("data-status", "complete")
    assert answer_text(answer) == text
