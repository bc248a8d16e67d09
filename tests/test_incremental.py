"""Streaming rendering: what a browser ends up showing, and that the cost stays linear.

A `Page` applies updates the way the browser does (append blocks to the body, replace
then append the tail) and counts the bytes sent, so the tests read like a reader's view.
"""

from __future__ import annotations

import html
import itertools
import re
from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st

from hxchat.render import IncrementalRenderer, RenderUpdate, render_markdown
from hxchat.render.incremental import PARSE_ALLOWANCE, PARSE_FACTOR


class Page:
    """The body and tail elements of one streamed answer in the browser."""

    def __init__(self) -> None:
        self._body: list[str] = []
        self._tail: list[str] = []
        self.bytes = 0

    def apply(self, update: RenderUpdate) -> None:
        self._body.append(update.blocks_html)
        if update.tail_html is not None:
            self._tail = [update.tail_html]
        self._tail.append(update.tail_append)
        for part in (update.blocks_html, update.tail_html or "", update.tail_append):
            self.bytes += len(part.encode())

    @property
    def body(self) -> str:
        return "".join(self._body)

    @property
    def tail(self) -> str:
        return "".join(self._tail)

    @property
    def tail_source(self) -> str:
        """The tail's text as shown (it is escaped source text)."""
        return html.unescape(self.tail)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible(markup: str) -> str:
    """Text a reader sees, whitespace removed (blocks are separated differently)."""
    parser = _Text()
    parser.feed(markup)
    parser.close()
    return re.sub(r"\s+", "", "".join(parser.parts))


def stream(text: str, cuts: list[int], takes: set[int]) -> tuple[IncrementalRenderer, Page]:
    """Feed `text` cut at `cuts`, taking after the chunks in `takes` and at the end."""
    renderer, page = IncrementalRenderer(), Page()
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(text)), len(text)]
    for i, (start, end) in enumerate(itertools.pairwise(bounds)):
        renderer.feed(text[start:end])
        if i in takes:
            page.apply(renderer.take())
    page.apply(renderer.take())
    return renderer, page


def word_by_word(text: str, every: int = 20) -> tuple[IncrementalRenderer, Page]:
    """Feed word by word (as a model streams), taking every `every` words."""
    words = re.findall(r"\S+\s*|\s+", text)
    cuts = list(itertools.accumulate(len(w) for w in words))
    return stream(text, cuts, set(range(every - 1, len(words), every)))


def normalized(text: str) -> str:
    """The text as the renderer shows it; a last "\r" waits for a possible "\n"."""
    text = text.removesuffix("\r")
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")


def check_page(renderer: IncrementalRenderer, page: Page, text: str) -> None:
    """The invariants: nothing lost or doubled, and committing never changes meaning."""
    assert renderer.text() == text
    assert renderer.finish() == render_markdown(text)
    source = normalized(text)
    assert source.endswith(page.tail_source)
    committed = source[: len(source) - len(page.tail_source)]
    assert page.body == render_markdown(committed)
    assert visible(page.body) + visible(render_markdown(page.tail_source)) == visible(
        renderer.finish()
    )


MIXED = """# Release notes

Some *intro* text with `code`, a [link](https://example.com) and **bold**
over two lines & <angle> brackets.

## Changes

- first item
- second item
  - nested item

1. one
2. two

> a quote
> on two lines

| name | value |
|:-----|------:|
| a    | 1     |

```python
def greet(name: str) -> str:
    return f"hello {name}"
```

    indented code

---

Final paragraph.
"""


def test_finished_blocks_are_sent_once_and_the_tail_holds_the_rest() -> None:
    renderer, page = word_by_word(MIXED, every=3)
    check_page(renderer, page, MIXED)
    assert page.tail_source == "Final paragraph.\n"
    assert page.body.count("<h1>") == 1 and page.body.count("<table>") == 1
    assert page.body.count('<div class="codeblock" data-lang="python">') == 1


def test_a_heading_is_committed_when_its_line_ends() -> None:
    renderer = IncrementalRenderer()
    renderer.feed("# Title")
    first = renderer.take()
    assert (first.blocks_html, first.tail_html, first.tail_append) == ("", None, "# Title")
    renderer.feed("\nNext")
    second = renderer.take()
    assert second.blocks_html == "<h1>Title</h1>\n"
    assert second.tail_html == "Next" and second.tail_append == ""


def test_a_paragraph_is_committed_at_the_blank_line_after_it() -> None:
    renderer = IncrementalRenderer()
    renderer.feed("Hello *world*\n")
    assert renderer.take().blocks_html == ""
    renderer.feed("\n")
    update = renderer.take()
    assert update.blocks_html == "<p>Hello <em>world</em></p>\n"
    assert update.tail_html == ""


def test_a_list_right_after_a_paragraph_commits_the_paragraph_at_once() -> None:
    renderer = IncrementalRenderer()
    renderer.feed("Here are the options, all of them worth a look:\n- first\n")
    update = renderer.take()
    assert update.blocks_html == "<p>Here are the options, all of them worth a look:</p>\n"
    assert update.tail_html == "- first\n"


def test_the_tail_is_escaped_text() -> None:
    renderer = IncrementalRenderer()
    renderer.feed("<script>alert('x')</script> & ")
    update = renderer.take()
    assert update.tail_append == "&lt;script&gt;alert('x')&lt;/script&gt; &amp; "
    assert renderer.take() == RenderUpdate("", None, "")


def test_a_code_block_is_not_parsed_while_it_grows() -> None:
    renderer = IncrementalRenderer()
    renderer.feed("Intro.\n\n```python\n")
    renderer.take()
    calls = renderer.parse_calls
    for i in range(200):
        renderer.feed(f"# comment {i}\n\n- not a list\n> nor a quote\n")
        assert renderer.take().blocks_html == ""
    assert renderer.parse_calls == calls
    renderer.feed("```\nAfter.")
    update = renderer.take()
    assert renderer.parse_calls == calls + 1
    assert update.blocks_html.startswith('<div class="codeblock" data-lang="python">')
    assert '<span class="c1"># comment 199</span>' in update.blocks_html
    assert update.tail_html == "After."


def test_a_longer_closing_fence_and_tilde_fences_close_the_block() -> None:
    text = "~~~\n```\nstill code\n~~~~~\n\n````md\n```\n`````\ndone\n"
    renderer, page = word_by_word(text, every=1)
    check_page(renderer, page, text)
    assert page.body.count("codeblock") == 2
    assert page.tail_source == "done\n"


def test_crlf_split_across_chunks_is_one_line_break() -> None:
    text = "one\r\n\r\ntwo\r\n"
    renderer, page = stream(text, [4, 5, 6, 7], {0, 1, 2, 3, 4})
    check_page(renderer, page, text)
    assert page.body == "<p>one</p>\n"
    assert page.tail_source == "two\n"


def test_snapshot_starts_a_fresh_reader_and_counts_as_a_take() -> None:
    text = MIXED[:400]
    _, page = word_by_word(text)
    fresh = IncrementalRenderer()
    fresh.feed(text)
    body, tail = fresh.snapshot()
    assert (body, tail) == (page.body, page.tail)
    assert fresh.take() == RenderUpdate("", None, "")
    fresh.feed(" more")
    assert fresh.take() == RenderUpdate("", None, " more")


def test_commits_depend_on_the_text_only_not_on_when_take_is_called() -> None:
    _, all_at_once = stream(MIXED, [], set())
    _, word_wise = word_by_word(MIXED, every=1)
    _, rare = word_by_word(MIXED, every=50)
    assert all_at_once.body == word_wise.body == rare.body
    assert all_at_once.tail == word_wise.tail == rare.tail


def test_earlier_link_definitions_apply_to_later_blocks() -> None:
    text = "[home]: https://example.com\n\nSee [home].\n\nAgain [home].\n\nEnd"
    renderer, page = word_by_word(text, every=1)
    assert page.body.count('href="https://example.com"') == 2
    check_page(renderer, page, text)


def test_the_final_article_is_the_streamed_body_and_the_tail_rendered() -> None:
    """The reader already has the finished blocks; the final render keeps them byte for
    byte and only adds the tail, now formatted, so nothing on the page moves at the end."""
    renderer, page = word_by_word(MIXED, every=3)
    final = renderer.finish()
    assert final.startswith(page.body)
    assert final.removeprefix(page.body) == "<p>Final paragraph.</p>\n"
    assert final.count("<h1>Release notes</h1>") == 1
    assert final.count('<div class="codeblock" data-lang="python">') == 1


# -- cost stays linear -------------------------------------------------------------


def code_block(lines: int) -> str:
    body = "".join(
        f"    total += compute(item_{i}, factor={i % 7})  # step {i}\n" for i in range(lines)
    )
    return f"Here is the code:\n\n```python\ndef run():\n{body}```\n\nDone.\n"


def test_a_2000_line_code_block_streams_in_linear_bytes() -> None:
    text = code_block(2000)
    renderer, page = word_by_word(text)
    check_page(renderer, page, text)
    final = len(renderer.finish().encode())
    assert page.bytes <= 3 * final
    assert renderer.parse_calls <= 4
    assert renderer.scanned_lines == text.count("\n")


def work(renderer: IncrementalRenderer) -> int:
    return renderer.parsed_chars + renderer.scanned_lines


def test_work_grows_linearly_for_a_code_block() -> None:
    small, _ = word_by_word(code_block(500))
    large, _ = word_by_word(code_block(4000))
    assert work(large) <= 8 * work(small) * 1.2


def test_work_grows_linearly_for_long_lists_and_quotes() -> None:
    def doc(n: int) -> str:
        items = "".join(f"- item {i} with *some* words\n\n  more for {i}\n\n" for i in range(n))
        quote = "".join(f"> quoted line {i}\n" for i in range(n))
        return f"{items}\n{quote}\nend\n"

    small, _ = word_by_word(doc(500))
    large, large_page = word_by_word(doc(4000))
    assert work(large) <= 8 * work(small) * 1.5
    check_page(large, large_page, doc(4000))
    assert large_page.bytes <= 2 * len(large.finish().encode()) + 1024


def test_parsing_is_capped_when_every_line_looks_like_a_block_start() -> None:
    # "2) x" cannot interrupt a paragraph, but looks like a list item: every line is a
    # parse point while the paragraph grows. The cap keeps the work linear.
    def doc(n: int) -> str:
        return "Start\n" + "".join(f"2) line {i}\n" for i in range(n)) + "\nend\n"

    small, _ = word_by_word(doc(500))
    large, large_page = word_by_word(doc(4000))
    text = doc(4000)
    assert large.parsed_chars <= PARSE_FACTOR * len(text) + PARSE_ALLOWANCE
    assert work(large) <= 8 * work(small) * 1.5
    check_page(large, large_page, text)
    assert large_page.tail_source == "end\n"


# -- properties ----------------------------------------------------------------------

WORDS = ["alpha", "beta", "*em*", "**strong**", "`code`", "~~gone~~", "a&b", "<tag>", "x_y"]
WORDS += ["[link](https://example.com/p)", "![img](https://example.com/i.png)", "1.", "#"]
LINES = st.one_of(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=8).map(" ".join),
    st.sampled_from(["", "", "", "---", "***", "===", "```", "```python", "~~~", "```nope"]),
    st.sampled_from(["| a | b |", "|---|:-:|", "| 1 | 2 |", "    indented", "\t tab"]),
    st.tuples(
        st.sampled_from(["# ", "### ", "- ", "* ", "  - ", "1. ", "2) ", "> ", "> > ", "    "]),
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join),
    ).map("".join),
)
MARKDOWNISH = st.tuples(st.lists(LINES, max_size=30), st.sampled_from(["", "\n", "\r\n"])).map(
    lambda parts: "\n".join(parts[0]) + parts[1]
)


@settings(max_examples=250, deadline=None)
@given(MARKDOWNISH, st.data())
def test_any_chunking_shows_the_same_text_as_the_final_render(
    text: str, data: st.DataObject
) -> None:
    cuts = data.draw(st.lists(st.integers(0, max(len(text), 1)), max_size=40))
    takes = data.draw(st.sets(st.integers(0, 41), max_size=20))
    renderer, page = stream(text, cuts, takes)
    check_page(renderer, page, text)
    assert page.bytes <= 2 * len(renderer.finish().encode()) + 300
    _, at_once = stream(text, [], set())
    assert (page.body, page.tail) == (at_once.body, at_once.tail)


SYNTAX = [*"ab \n\n\n\t>-*_+=#`~|:[]()!<&1.)\\\r\0", "```", "- ", "1. ", "2) ", "    ", "]: /u"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(SYNTAX), max_size=120).map("".join), st.data())
def test_arbitrary_markdown_syntax_never_loses_text(text: str, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, max(len(text), 1)), max_size=40))
    takes = data.draw(st.sets(st.integers(0, 41), max_size=20))
    renderer, page = stream(text, cuts, takes)
    assert renderer.finish() == render_markdown(text)
    source = normalized(text)
    assert source.endswith(page.tail_source)
    escaped = len(html.escape(source, quote=False).encode())
    assert page.bytes <= len(page.body.encode()) + 2 * escaped + 16
    _, at_once = stream(text, [], set())
    assert (page.body, page.tail) == (at_once.body, at_once.tail)
    if "]:" not in source:  # a link defined after its use is resolved by finish() only
        check_page(renderer, page, text)
