"""The rendered answers a page shows again are remembered (`render/cache.py`, #10): the
same HTML as rendering, within a budget, the least recently used out first."""

from __future__ import annotations

from hxchat.render import render_markdown
from hxchat.render.cache import RenderedAnswers

TEXT = "## A heading\n\nSome *emphasis*, `code` and a [link](https://example.com/).\n"


def test_an_answer_is_rendered_once_and_shown_the_same() -> None:
    rendered = RenderedAnswers()
    first = rendered(TEXT)
    assert first == render_markdown(TEXT)
    assert rendered(TEXT) is first  # remembered, not rendered again
    assert rendered(TEXT + "More.") != first  # another text is another answer


def test_the_budget_holds_and_the_least_recently_used_go_first() -> None:
    texts = [f"Answer number {n}, *emphasised*." for n in range(4)]
    one = len(texts[0]) + len(render_markdown(texts[0]))
    rendered = RenderedAnswers(budget=one * 3 + 2, largest=one + 1)  # room for three
    kept = [rendered(text) for text in texts[:3]]
    assert rendered(texts[0]) is kept[0]  # now the most recently used
    rendered(texts[3])  # evicts texts[1], the least recently used
    assert rendered.size <= rendered.budget
    assert rendered(texts[0]) is kept[0]
    assert rendered(texts[1]) is not kept[1]
    assert rendered(texts[1]) == kept[1]


def test_an_answer_too_big_for_the_budget_is_not_kept() -> None:
    rendered = RenderedAnswers(budget=8 * 100)
    long = "word " * 200
    html = rendered(long)
    assert html == render_markdown(long)
    assert rendered.size == 0 and rendered(long) is not html
