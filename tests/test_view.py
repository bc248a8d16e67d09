"""How the unfinished block looks while it streams, within the byte budget."""

from __future__ import annotations

import random

from hxchat.providers.echo import words
from hxchat.render import render_markdown
from hxchat.render.view import StreamView, TailUpdate
from tests import html_tree
from tests.helpers import MIXED


def feed_all(view: StreamView, text: str, every: int = 1) -> list[TailUpdate]:
    updates = []
    for i, word in enumerate(words(text)):
        view.feed(word)
        if i % every == 0:
            updates.append(view.take())
    updates.append(view.take())
    return updates


def sent(updates: list[TailUpdate]) -> int:
    return sum(len(u.blocks_html) + len(u.tail_html or "") + len(u.append) for u in updates)


def test_an_open_code_block_is_shown_as_code_then_highlighted() -> None:
    view = StreamView()
    view.feed("```python\nx = 1\n")
    first = view.take()
    box = html_tree.parse(first.tail_html or "").find("div", class_="codeblock")
    assert box.attrs["data-lang"] == "python"
    sink = box.find("code", sse_swap="message")  # new text goes into the code element
    assert sink.text == "x = 1\n"
    view.feed("y = 2\n")
    second = view.take()
    assert (second.tail_html, second.append) == (None, "y = 2\n")
    view.feed("```\n")
    closed = view.take()
    assert "highlight" in closed.blocks_html and "<span" in closed.blocks_html
    assert html_tree.parse(closed.tail_html or "").find(sse_swap="message").text == ""


def test_an_open_paragraph_is_formatted_as_it_doubles() -> None:
    view = StreamView()
    view.feed("Here is **some bold** text, and")
    first = view.take()
    paragraph = html_tree.parse(first.tail_html or "").find("p")
    assert paragraph.find("strong").text == "some bold"
    assert paragraph.find(sse_swap="message")  # the sink is at the paragraph's end
    view.feed(" more")
    small = view.take()
    assert (small.tail_html, small.append) == (None, " more")
    view.feed(" words *to* come so that the paragraph doubles in length")
    grown = view.take()
    assert grown.tail_html is not None and "<em>to</em>" in grown.tail_html


def test_lists_and_tables_stay_text_while_open() -> None:
    view = StreamView()
    view.feed("- one item that is long enough\n- two")
    update = view.take()
    assert update.tail_html is None  # still the plain text sink
    assert update.append.startswith("- one item")


def test_snapshot_matches_the_stream() -> None:
    view = StreamView()
    feed_all(view, MIXED * 2 + "```js\nlet a = 1;\n")
    blocks, tail = view.snapshot()
    assert html_tree.parse(tail).find("code", sse_swap="message").text == "let a = 1;\n"
    assert html_tree.parse(blocks).find_all("table")


def test_bytes_stay_within_budget_for_any_shape() -> None:
    rng = random.Random(7)
    prose = " ".join(
        rng.choice(["alpha", "**beta**", "gamma", "`delta`", "eps"]) for _ in range(400)
    )
    shapes = {
        "mixed": MIXED * 30,
        "prose": (prose + "\n\n") * 5,
        "code": "```python\n" + "".join(f"v{i} = f({i})\n" for i in range(1500)) + "```\n",
    }
    for name, text in shapes.items():
        for every in (1, 7, 40):
            view = StreamView()
            updates = feed_all(view, text, every)
            final_html = render_markdown(text)
            rest = view.finish_rest(final_html)
            assert rest is not None, "the blocks sent are the start of the final answer"
            total = sent(updates) + len(rest)
            assert total <= 2.5 * len(final_html) + 2_000, (name, every, total / len(final_html))


def test_the_tail_always_shows_the_unfinished_text() -> None:
    """Applied as the page applies them, the updates leave in a plain-text tail exactly
    the text of the unfinished block, whether it came whole (`r`), as the sink's new
    text (`s`) or appended (unnamed events)."""
    resets = 0
    for every in (1, 2, 5):
        view = StreamView()
        _, tail = view.snapshot()
        for i, word in enumerate(words(MIXED * 4)):
            view.feed(word)
            if i % every:
                continue
            update = view.take()
            if update.tail_html is not None:
                tail = update.tail_html
            sink = html_tree.parse(tail).find(sse_swap="message")
            if update.sink_html is not None:
                assert tail == f'<span sse-swap="message">{sink.text}</span>', "not plain"
                tail = f'<span sse-swap="message">{update.sink_html}</span>'.replace("<!---->", "")
                resets += 1
            elif update.append:
                tail = tail.replace(f"{sink.text}</", f"{sink.text}{update.append}</", 1)
            if tail.startswith('<span sse-swap="message">'):
                shown = html_tree.parse(tail).find(sse_swap="message").text
                assert shown == view.renderer.uncommitted()
    assert resets, "a plain tail should be reset by its text alone"
