"""The HTML of the answers rendered lately, so that a page shown again renders nothing.

Rendering a long conversation's answers from Markdown is most of its page's server
time (a path of 50 answers of 120 words: about 60 ms). Finished answers keep their
HTML in the store (`store/rendered.py`); this cache spares the renders that remain (an
answer whose HTML the store does not keep yet, a share link's snapshot). The HTML is a
pure function of the answer's text, so it is kept by the text, the most recently used
first, within a budget of characters (text and HTML together); an answer too big for
an eighth of the budget is rendered every time.
"""

from __future__ import annotations

from collections import OrderedDict

from hxchat.render.markdown import render_markdown

BUDGET_CHARS = 8_000_000  # about 16 MB of str at one byte a character (most answers)


class RenderedAnswers:
    """`render_markdown`, remembered by text, least recently used out first."""

    def __init__(self, budget: int = BUDGET_CHARS, largest: int | None = None) -> None:
        self.budget = budget
        self.largest = budget // 8 if largest is None else largest  # what one may take
        self.size = 0
        self._html: OrderedDict[str, str] = OrderedDict()

    def __call__(self, text: str) -> str:
        html = self._html.get(text)
        if html is not None:
            self._html.move_to_end(text)
            return html
        html = render_markdown(text)
        size = len(text) + len(html)
        if size <= self.largest:
            self._html[text] = html
            self.size += size
            while self.size > self.budget:
                old_text, old_html = self._html.popitem(last=False)
                self.size -= len(old_text) + len(old_html)
        return html
