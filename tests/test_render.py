"""Markdown rendering: hostile input stays text, structure survives, no inline styles.

Output is parsed with the stdlib HTML parser and checked as elements and attributes, as
a browser would build them, rather than compared as long strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hxchat.render import render_markdown

ALLOWED_TAGS = {
    *("p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "pre"),
    *("code", "span", "div", "table", "thead", "tbody", "tr", "th", "td", "em", "strong"),
    *("s", "del", "a", "hr", "br"),
}
ALLOWED_ATTRS = {
    "ol": {"start"},
    "a": {"href", "title", "rel", "target"},
    "span": {"class"},
    "div": {"class", "data-lang"},
    "pre": {"class"},
    "th": {"class"},
    "td": {"class"},
}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""


class Doc(HTMLParser):
    """Elements in document order; each element's text includes its descendants'."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.text = ""
        self._open: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.elements.append(element)
        if tag not in ("hr", "br"):
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        self.text += data
        for element in self._open:
            element.text += data

    def find(self, tag: str) -> list[Element]:
        return [e for e in self.elements if e.tag == tag]


def doc(markdown: str) -> Doc:
    parsed = Doc()
    parsed.feed(render_markdown(markdown))
    parsed.close()
    return parsed


def assert_safe(parsed: Doc) -> None:
    """Only the allow-listed tags and attributes; links only to safe schemes."""
    for element in parsed.elements:
        assert element.tag in ALLOWED_TAGS, element
        assert set(element.attrs) <= ALLOWED_ATTRS.get(element.tag, set()), element
        if element.tag == "a":
            href = "".join(element.attrs["href"].split()).lower()
            assert not href.startswith(("javascript:", "data:", "vbscript:", "file:")), href
            assert element.attrs["rel"] == "noopener noreferrer nofollow"
            assert element.attrs["target"] == "_blank"


HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)" onclick="alert(1)">click</a>',
    '<div onmouseover="alert(1)">hover</div>',
    "<iframe src=https://evil.example></iframe>",
    "<style>body { display: none }</style>",
    "<svg onload=alert(1)></svg>",
    "text <b onclick=alert(1)>inline</b> html",
    "<!-- comment --><p>para</p>",
]


@pytest.mark.parametrize("source", HOSTILE)
def test_raw_html_is_shown_as_text(source: str) -> None:
    parsed = doc(source)
    assert_safe(parsed)
    assert [e.tag for e in parsed.elements] == ["p"]
    assert parsed.text.strip() == source


@pytest.mark.parametrize(
    "source",
    [
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](&#106;avascript:alert(1))",
        "[click](&#x6A;&#x61;vascript:alert(1))",
        "[click](<javascript:alert(1)>)",
        "[click](  javascript:alert(1))",
        "[click](vbscript:msgbox(1))",
        "[click](data:text/html;base64,PHNjcmlwdD4=)",
        "[click](file:///etc/passwd)",
        "[click][ref]\n\n[ref]: javascript:alert(1)",
    ],
)
def test_unsafe_links_are_dropped_and_their_text_kept(source: str) -> None:
    parsed = doc(source)
    assert_safe(parsed)
    assert parsed.find("a") == []
    assert parsed.text.strip() == "click"


def test_unsafe_autolink_is_text() -> None:
    parsed = doc("<javascript:alert(1)>")
    assert parsed.find("a") == []
    assert "javascript:alert(1)" in parsed.text


@pytest.mark.parametrize(
    ("source", "href"),
    [
        ("[x](https://example.com/a?b=1)", "https://example.com/a?b=1"),
        ("[x](http://example.com)", "http://example.com"),
        ("[x](mailto:me@example.com)", "mailto:me@example.com"),
        ("[x](/relative/path)", "/relative/path"),
        ("[x](#section)", "#section"),
        ("<https://example.com>", "https://example.com"),
    ],
)
def test_safe_links_open_in_a_new_tab_without_referrer(source: str, href: str) -> None:
    parsed = doc(source)
    assert_safe(parsed)
    [link] = parsed.find("a")
    assert link.attrs["href"] == href
    assert link.attrs["rel"] == "noopener noreferrer nofollow"
    assert link.attrs["target"] == "_blank"


def test_images_become_links_and_are_never_loaded() -> None:
    parsed = doc('![a cat](https://example.com/cat.png "Cat") and ![](https://example.com/d.png)')
    assert_safe(parsed)
    assert parsed.find("img") == []
    cat, dog = parsed.find("a")
    assert (cat.attrs["href"], cat.text, cat.attrs["title"]) == (
        "https://example.com/cat.png",
        "a cat",
        "Cat",
    )
    assert (dog.attrs["href"], dog.text) == (
        "https://example.com/d.png",
        "https://example.com/d.png",
    )


@pytest.mark.parametrize(
    "source", ["![alt text](javascript:alert(1))", "![alt text](data:image/png;base64,iVBORw0K)"]
)
def test_images_with_unsafe_urls_keep_only_their_alt_text(source: str) -> None:
    parsed = doc(source)
    assert parsed.find("a") == [] and parsed.find("img") == []
    assert parsed.text.strip() == "alt text"


def test_image_inside_a_link_does_not_nest_links() -> None:
    parsed = doc("[![logo](https://example.com/l.png)](https://example.com)")
    [link] = parsed.find("a")
    assert (link.attrs["href"], link.text) == ("https://example.com", "logo")


def test_table_alignment_becomes_classes() -> None:
    parsed = doc("| l | c | r | n |\n|:--|:-:|--:|---|\n| 1 | 2 | 3 | 4 |")
    assert_safe(parsed)
    assert [e.tag for e in parsed.elements if e.tag.startswith("t")] == [
        *("table", "thead", "tr", "th", "th", "th", "th"),
        *("tbody", "tr", "td", "td", "td", "td"),
    ]
    classes = [e.attrs.get("class") for e in parsed.elements if e.tag in ("th", "td")]
    assert classes == ["align-left", "align-center", "align-right", None] * 2
    assert [e.text for e in parsed.find("td")] == ["1", "2", "3", "4"]


def test_lists_headings_emphasis_and_strikethrough() -> None:
    source = "# One\n\n###### Six\n\n- a\n- **b**\n\n3. c\n4. ~~d~~\n\n> *q*\n\n---"
    parsed = doc(source)
    assert_safe(parsed)
    assert [(e.tag, e.text) for e in parsed.elements if e.tag[0] == "h" and e.tag != "hr"] == [
        ("h1", "One"),
        ("h6", "Six"),
    ]
    [ul] = parsed.find("ul")
    [ol] = parsed.find("ol")
    assert ol.attrs["start"] == "3"
    assert [e.text for e in parsed.find("li")] == ["a", "b", "c", "d"]
    assert [e.text for e in parsed.find("strong")] == ["b"]
    assert [e.text for e in parsed.find("s")] == ["d"]
    assert [e.text.strip() for e in parsed.find("blockquote")] == ["q"]
    assert len(parsed.find("hr")) == 1
    assert ul.text.split() == ["a", "b"]


def test_code_is_highlighted_by_classes_without_inline_styles() -> None:
    source = "```python\ndef f(x):\n    return '<b>' & x\n```"
    rendered = render_markdown(source)
    assert "style" not in rendered
    parsed = doc(source)
    assert_safe(parsed)
    [block] = parsed.find("div")
    assert block.attrs == {"class": "codeblock", "data-lang": "python"}
    [pre] = parsed.find("pre")
    assert pre.attrs == {"class": "highlight"}
    assert pre.text == "def f(x):\n    return '<b>' & x\n"
    keywords = [e.text for e in parsed.find("span") if e.attrs.get("class") == "k"]
    assert keywords == ["def", "return"]
    assert {e.attrs["class"] for e in parsed.find("span")} >= {"k", "nf", "n", "s1"}


@pytest.mark.parametrize(("info", "lang"), [("nosuchlang", "nosuchlang"), ("", "")])
def test_unknown_or_absent_language_is_plain_escaped_code(info: str, lang: str) -> None:
    parsed = doc(f"```{info}\n<b>bold?</b> & more\n```")
    assert_safe(parsed)
    [block] = parsed.find("div")
    assert block.attrs.get("data-lang", "") == lang
    assert parsed.find("span") == [] and parsed.find("b") == []
    assert parsed.find("code")[0].text == "<b>bold?</b> & more\n"


def test_indented_code_is_a_code_block_too() -> None:
    parsed = doc("para\n\n    x = <1>\n")
    [block] = parsed.find("div")
    assert block.attrs.get("class") == "codeblock"
    assert parsed.find("code")[0].text == "x = <1>\n"


def test_hostile_fence_info_cannot_break_out_of_the_attribute() -> None:
    parsed = doc('```"><script>alert(1)</script>\nx\n```')
    assert_safe(parsed)
    [block] = parsed.find("div")
    assert block.attrs.get("data-lang", "") == ""
    assert parsed.find("code")[0].text == "x\n"


TOKENS = [
    *"ab <>\"'&=/:()[]!*_~`#>-|\n\\",
    *("javascript:", "data:", "<script>", "onerror=", "<img ", "](", "&#106;", "style="),
]
markdownish = st.lists(st.sampled_from(TOKENS), max_size=80).map("".join)


@settings(max_examples=300, deadline=None)
@given(markdownish)
def test_any_input_renders_to_allow_listed_html_only(source: str) -> None:
    parsed = doc(source)
    assert_safe(parsed)
    assert "<script" not in render_markdown(source).lower()
