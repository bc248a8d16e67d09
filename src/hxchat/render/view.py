"""What one browser reader is sent while an answer streams, within a byte budget.

`IncrementalRenderer` decides which blocks are finished; this decides what the
browser's tail (the unfinished last block) looks like and what the stream sends:

- `blocks_html`: finished blocks, rendered once, appended to the body;
- `tail_html`: a new tail, replacing the old one (when blocks finished, when the kind
  of the open block changed, or to re-format an open paragraph);
- `sink_html`: new text for the sink of a plain-text tail, replacing its text (when
  blocks finished and the tail stays plain text: the sink's markup is not sent again);
- `append`: new text, escaped, appended to the tail's *sink*: the one element in the
  tail that new text goes into.

The tail looks like what it will become: an open fenced code block is already the code
box (monospace, its language shown) with the sink as its `code` element; an open
paragraph is re-rendered with its inline formatting each time it has doubled in
length, with the sink at its end, while all such re-renders together stay under a
third of the answer's bytes; anything else (a list or table while it grows) is escaped
source text. At the end, when the blocks the browser already has are exactly the start
of the whole answer rendered at once, only the rest is sent (`finish_rest`).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from markupsafe import Markup

from hxchat.render.incremental import IncrementalRenderer
from hxchat.render.markdown import open_code_html, render_markdown
from hxchat.web.wire import BrowserEvent

REFORMAT_MIN_CHARS = 24  # shorter paragraphs are shown as text until they finish
REFORMAT_MAX_CHARS = 8_192  # longer ones are no longer re-rendered
REFORMAT_BUDGET = 0.3  # re-renders may cost at most this share of the answer's bytes
REFORMAT_ALLOWANCE = 1_024  # ...plus this much, so that a first paragraph is formatted too

# Sinks listen to the unnamed events (web/wire.py) and inherit `hx-swap="beforeend"`
# from the tail (templates/_message.html).
SINK = Markup('<span sse-swap="%s">{}</span>') % BrowserEvent.APPEND
_CODE_SINK = f'<code sse-swap="{BrowserEvent.APPEND}">'
EMPTY_SINK = "<!---->"
_NOT_A_PARAGRAPH = re.compile(r" {0,3}(?:[#>|<*+=-]|\d{1,9}[.)]|`{3}|~{3})|    |\t")


@dataclass(frozen=True, slots=True)
class TailUpdate:
    """One frame's changes, to apply in this order."""

    blocks_html: str
    tail_html: str | None
    append: str
    sink_html: str | None = None


class StreamView:
    """An `IncrementalRenderer` as one browser reader sees it."""

    def __init__(self) -> None:
        self.renderer = IncrementalRenderer()
        self._mode = "text"
        self._formatted_at = 0  # tail length at its last formatted re-render
        self._reformat_bytes = 0
        self._blocks: list[str] = []  # everything sent as blocks, in order
        self._blocks_bytes = 0

    def feed(self, text: str) -> None:
        self.renderer.feed(text)

    def snapshot(self) -> tuple[str, str]:
        """(body HTML, tail HTML) for a reader starting now; counts as a `take()`."""
        blocks, _ = self.renderer.snapshot()
        self._record(blocks)
        return "".join(self._blocks), self._tail_html(self._current_mode())

    def take(self) -> TailUpdate:
        """What changed since the last `take()` or `snapshot()`."""
        update = self.renderer.take()
        self._record(update.blocks_html)
        mode = self._current_mode()
        if mode == self._mode == "text" and update.tail_html is not None:
            # An event with empty data is never dispatched (SSE): empty, the sink gets a
            # comment, which is nothing to see and still `:empty` to CSS.
            text = update.tail_html or EMPTY_SINK
            return TailUpdate(update.blocks_html, None, "", sink_html=text)
        if update.tail_html is not None or mode != self._mode or self._should_reformat(mode):
            return TailUpdate(update.blocks_html, self._tail_html(mode), "")
        return TailUpdate(update.blocks_html, None, update.tail_append)

    def finish(self) -> str:
        """The whole answer rendered at once (what a page load shows)."""
        return self.renderer.finish()

    def finish_rest(self, final_html: str) -> str | None:
        """The part of `final_html` the browser lacks, when what it has is exactly its
        start; None when the blocks differ (then the whole answer must be sent)."""
        sent = "".join(self._blocks)
        return final_html[len(sent) :] if final_html.startswith(sent) else None

    # -- inside -----------------------------------------------------------------

    def _record(self, blocks_html: str) -> None:
        if blocks_html:
            self._blocks.append(blocks_html)
            self._blocks_bytes += len(blocks_html)

    def _current_mode(self) -> str:
        # Once per frame: sizes first, so that a long open block is not joined each time.
        if self.renderer.in_fence():
            return "code"
        if not REFORMAT_MIN_CHARS <= self.renderer.uncommitted_size() <= REFORMAT_MAX_CHARS:
            return "text"
        text = self.renderer.uncommitted()
        if not _NOT_A_PARAGRAPH.match(text) and "\n\n" not in text:
            return "paragraph"
        return "text"

    def _should_reformat(self, mode: str) -> bool:
        if mode != "paragraph":
            return False
        size = self.renderer.uncommitted_size()
        budget = REFORMAT_BUDGET * (self._blocks_bytes + size) + REFORMAT_ALLOWANCE
        return size >= 2 * self._formatted_at and self._reformat_bytes + size <= budget

    def _tail_html(self, mode: str) -> str:
        self._mode = mode
        text = self.renderer.uncommitted()
        fence = self.renderer.open_fence()
        if mode == "code" and fence is not None:
            return open_code_html(fence[1], fence[0]).replace("<code>", _CODE_SINK, 1)
        if mode == "paragraph":
            inline = _paragraph_content(render_markdown(text))
            if inline is not None:
                self._formatted_at = len(text)
                self._reformat_bytes += len(inline)
                # markdown-it drops the paragraph's trailing space; the sink keeps it,
                # or the next word would stick to the last one
                return f"<p>{inline}{SINK.format(' ' if text[-1:].isspace() else '')}</p>"
        self._mode = "text"
        return str(SINK.format(Markup(html.escape(text, quote=False))))  # noqa: S704


def _paragraph_content(rendered: str) -> str | None:
    """The inside of a rendered single paragraph, or None if it is not one."""
    body = rendered.strip()
    if body.startswith("<p>") and body.endswith("</p>") and body.count("<p>") == 1:
        return body[3:-4]
    return None
