"""Streaming Markdown: bytes on the wire and CPU stay linear in the answer's length.

Re-rendering the whole message on every token is quadratic in bytes and CPU. Here the
browser keeps two elements: a body, to which finished top-level blocks are appended
once, rendered and sanitized; and a tail (`white-space: pre-wrap`) that shows the
unfinished last block as escaped source text, to which new text is appended. When blocks
finish, their HTML is appended to the body and the tail is replaced by what is left
(usually a line or less). Each byte of the answer is thus sent at most three times:
appended to the tail, maybe once more in a replaced tail, and once rendered.

How finished blocks are found, in linear time:

- Text is cut into complete lines; each line is looked at once, in order, so what is
  committed depends only on the text, never on when `take()` is called.
- Inside an open fenced code block only the closing fence is looked for, line by line:
  a 2,000-line code block is parsed once, when it closes.
- Elsewhere, a line that may end a block (a blank line, a heading, a fence, a list item,
  a quote, a rule...) makes markdown-it parse the uncommitted text only; every top-level
  block but the last is committed (and the last too when nothing can extend it, e.g. a
  paragraph followed by a blank line). Lines that clearly continue the last block (the
  next item of the same list, the next `>` line) are not parse points, and all parsing is
  capped at a constant times the text seen, so a long list or quote cannot make it
  quadratic; a capped parse only delays a commit. After a parse that found nothing to
  commit, lines that only look like block starts wait until the text has doubled.
- Link reference definitions seen so far apply to later blocks; a link whose definition
  comes later is shown as text until `finish()` renders the whole answer once.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any, Literal

from markdown_it.token import Token

from hxchat.render.markdown import parse, render_markdown, render_tokens

__all__ = ["IncrementalRenderer", "RenderUpdate"]

# All parsing together may cost at most this many times the characters seen, plus the
# allowance; beyond that a parse point is skipped (the next one catches up).
PARSE_FACTOR = 4
PARSE_ALLOWANCE = 16_384

_BLOCK_START_RE = re.compile(
    r" {0,3}(?:"
    r"#{1,6}(?:[ \t]|$)"  # ATX heading
    r"|`{3,}|~{3,}"  # fence
    r"|>"  # block quote
    r"|[-+*](?:[ \t]|$)"  # bullet item
    r"|\d{1,9}[.)](?:[ \t]|$)"  # ordered item
    r"|(?:[-*_][ \t]*){3,}$"  # thematic break
    r"|(?:=+|-+)[ \t]*$"  # setext underline
    r")"
)
_ITEM_RE = re.compile(r" {0,3}(?:([-+*])|\d{1,9}([.)]))(?:[ \t]|$)")
_QUOTE_RE = re.compile(r" {0,3}>")
_CLOSING_FENCE_RE = re.compile(r" {0,3}(`+|~+)[ \t]*$")


@dataclass(frozen=True, slots=True)
class RenderUpdate:
    """What changed since the last `take()`, to apply in this order."""

    blocks_html: str  # newly finished blocks, rendered and sanitized: append to the body
    tail_html: str | None  # when not None: replace the tail's content with this HTML
    tail_append: str  # escaped text to append to the tail (after applying tail_html)


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _is_blank(line: str) -> bool:
    return not line.strip(" \t\n")


def _closes_fence(line: str, markup: str) -> bool:
    match = _CLOSING_FENCE_RE.match(line)
    return (
        match is not None and match.group(1)[0] == markup[0] and len(match.group(1)) >= len(markup)
    )


def _kind(token: Token) -> str:
    """The last block's kind, to tell lines that surely continue it."""
    if token.type in ("bullet_list_open", "ordered_list_open"):
        return "list" + token.markup
    return {"blockquote_open": "quote", "code_block": "code", "fence": "fence"}.get(
        token.type, "other"
    )


def _continues(kind: str, line: str) -> bool:
    """True when `line` (no newline) very likely continues a last block of `kind`."""
    if kind.startswith("list"):
        if line.startswith((" ", "\t")):
            return True
        match = _ITEM_RE.match(line)
        return match is not None and (match.group(1) or match.group(2)) == kind[4:]
    if kind == "quote":
        return _QUOTE_RE.match(line) is not None
    if kind == "code":
        return line.startswith(("    ", "\t"))
    return False


class IncrementalRenderer:
    """Renders one streamed answer: `feed` text, `take` updates, `finish` once.

    Not thread-safe; one per stream reader. `parse_calls`, `parsed_chars` and
    `scanned_lines` count the work done, so tests can check it stays linear.
    """

    def __init__(self) -> None:
        self._fed: list[str] = []  # everything fed, as given
        self._pending: list[str] = []  # fed, not yet processed
        self._carry = ""  # a trailing "\r" that may be the first half of "\r\n"
        self._partial: list[str] = []  # pieces of the incomplete last line
        self._lines: list[str] = []  # uncommitted complete lines, each ending in "\n"
        self._uncommitted_chars = 0
        self._prev_blank = False
        self._kind = ""  # kind of the last block at the last parse ("" = unknown)
        self._fence: str | None = None  # markup of the open top-level fence
        self._backoff = 0  # no parse at a weak point before this many uncommitted chars
        self._env: dict[str, Any] = {}  # markdown-it env: link reference definitions
        self._blocks: list[str] = []  # HTML of committed blocks, in order
        self._sent_blocks = 0
        self._tail_reset = False
        self._tail_new: list[str] = []  # processed text since the last take()
        self._seen_chars = 0
        self.parse_calls = 0
        self.parsed_chars = 0
        self.scanned_lines = 0

    def text(self) -> str:
        """All the text fed so far (joined once, and kept so)."""
        if len(self._fed) > 1:
            self._fed[:] = ["".join(self._fed)]
        return self._fed[0] if self._fed else ""

    def feed(self, text: str) -> None:
        """Add streamed text; the work is done later, at most once per character."""
        if text:
            self._fed.append(text)
            self._pending.append(text)

    def take(self) -> RenderUpdate:
        """What changed since the last `take()` (or `snapshot()`)."""
        self._process()
        blocks_html = "".join(self._blocks[self._sent_blocks :])
        self._sent_blocks = len(self._blocks)
        if self._tail_reset:
            update = RenderUpdate(blocks_html, _escape(self._uncommitted()), "")
        else:
            update = RenderUpdate(blocks_html, None, _escape("".join(self._tail_new)))
        self._tail_reset = False
        self._tail_new.clear()
        return update

    def snapshot(self) -> tuple[str, str]:
        """(all finished blocks' HTML, the tail's HTML) for a reader starting now.

        Counts as a `take()`: the next one returns only what changes after it.
        """
        self._process()
        self._sent_blocks = len(self._blocks)
        self._tail_reset = False
        self._tail_new.clear()
        return "".join(self._blocks), _escape(self._uncommitted())

    def uncommitted(self) -> str:
        """The text of the unfinished last block (what the tail shows)."""
        self._process()
        return self._uncommitted()

    def uncommitted_size(self) -> int:
        """`len(self.uncommitted())`, without joining it."""
        self._process()
        return self._uncommitted_chars + sum(map(len, self._partial))

    def in_fence(self) -> bool:
        """Whether the last block is an open fenced code block (`open_fence()` is not
        None), without joining its code."""
        self._process()
        return self._fence is not None and bool(self._lines)

    def open_fence(self) -> tuple[str, str] | None:
        """(language, code so far) while the last block is an open fenced code block."""
        self._process()
        if self._fence is None or not self._lines:
            return None
        info = self._lines[0].strip(" \t\n").lstrip(self._fence[0]).strip()
        code = "".join(self._lines[1:]) + "".join(self._partial)
        return (info.split(maxsplit=1)[0] if info else ""), code

    def finish(self) -> str:
        """The final HTML of the whole text, rendered at once."""
        return render_markdown(self.text())

    # -- inside -------------------------------------------------------------------

    def _uncommitted(self) -> str:
        return "".join(self._lines) + "".join(self._partial)

    def _process(self) -> None:
        """Cut pending text into lines and look at each complete line once."""
        if not self._pending:
            return
        new = self._carry + "".join(self._pending)
        self._pending.clear()
        self._carry = ""
        if new.endswith("\r"):  # wait for the next piece: it may start with "\n"
            self._carry, new = "\r", new[:-1]
        # The same normalisation as markdown-it's, so line numbers agree with its maps.
        new = new.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
        if not new:
            return
        pieces = new.split("\n")
        for piece in pieces[:-1]:
            if not self._lines and _is_blank(piece) and all(map(_is_blank, self._partial)):
                # A blank line right after a commit: nothing to show, nothing to parse.
                if self._partial:  # its spaces may be on screen already
                    self._partial.clear()
                    self._tail_reset = True
                self._scan(piece + "\n")
                self._prev_blank = True
                continue
            self._tail_new.append(piece + "\n")
            self._partial.append(piece)
            line = "".join(self._partial) + "\n"
            self._partial.clear()
            self._add_line(line)
        if pieces[-1]:
            self._tail_new.append(pieces[-1])
            self._partial.append(pieces[-1])

    def _scan(self, line: str) -> None:
        self.scanned_lines += 1
        self._seen_chars += len(line)

    def _add_line(self, line: str) -> None:
        self._scan(line)
        self._lines.append(line)
        self._uncommitted_chars += len(line)
        body = line[:-1]
        blank = _is_blank(body)
        if self._fence is not None:
            if _closes_fence(body, self._fence):
                self._parse(force=True)
        else:
            point = self._parse_point(body, blank)
            if point is not None:
                self._parse(force=False, weak=point == "weak")
        self._prev_blank = blank

    def _parse_point(self, line: str, blank: bool) -> Literal["strong", "weak"] | None:
        """May this line end the last block (or show that it has ended)?

        A blank line, or the first line after one, nearly always ends a block: "strong".
        A line that looks like a block start is "weak" (`2) x` cannot interrupt a
        paragraph); after a weak point found nothing, the next waits until the
        uncommitted text has doubled.
        """
        if blank:
            if self._prev_blank or self._kind.startswith(("list", "code")):
                return None
            return "strong"
        if _continues(self._kind, line):
            return None
        if self._prev_blank:
            return "strong"
        if self._uncommitted_chars >= self._backoff and _BLOCK_START_RE.match(line):
            return "weak"
        return None

    def _parse(self, *, force: bool, weak: bool = False) -> None:
        """Parse the uncommitted lines; commit every finished top-level block."""
        budget = PARSE_FACTOR * self._seen_chars + PARSE_ALLOWANCE
        if not force and self.parsed_chars + self._uncommitted_chars > budget:
            return
        tokens = parse("".join(self._lines), self._env)
        self.parse_calls += 1
        self.parsed_chars += self._uncommitted_chars
        starts = [i for i, t in enumerate(tokens) if t.level == 0 and t.nesting >= 0 and t.map]
        if not starts:
            self._kind, self._fence = "", None
            return
        last = tokens[starts[-1]]
        assert last.map is not None
        if self._is_closed(last):
            self._kind, self._fence = "", None
            cut, end_line = len(tokens), last.map[1]
            while end_line < len(self._lines) and _is_blank(self._lines[end_line]):
                end_line += 1
        else:
            self._kind = _kind(last)
            self._fence = last.markup if last.type == "fence" else None
            cut, end_line = starts[-1], last.map[0]
        if cut == 0:
            if weak:
                self._backoff = 2 * self._uncommitted_chars
            return
        self._backoff = 0
        self._blocks.append(render_tokens(tokens[:cut], self._env))
        self._uncommitted_chars -= sum(len(line) for line in self._lines[:end_line])
        del self._lines[:end_line]
        self._tail_reset = True

    def _is_closed(self, token: Token) -> bool:
        """Can no later line change this last top-level block?"""
        assert token.map is not None
        start, end = token.map
        if token.type in ("heading_open", "hr"):
            return True
        if token.type == "fence":
            return end - 1 > start and _closes_fence(self._lines[end - 1], token.markup)
        if token.type in ("paragraph_open", "table_open", "blockquote_open"):
            return end < len(self._lines)  # a blank line follows
        return False
