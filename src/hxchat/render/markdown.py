"""Markdown to safe HTML: the one place where model output becomes markup.

Why it is built this way:

- markdown-it-py (CommonMark + tables + strikethrough) with raw HTML off, so HTML in a
  model's answer is shown as text.
- Code is highlighted by Pygments with CSS classes only (`static/pygments.css`): the
  Content-Security-Policy forbids inline styles, so table alignment becomes a class too.
- Images are never loaded (the CSP blocks remote images and the page must raise no
  violation): an image becomes a link to its URL.
- Links keep only http, https, mailto and relative URLs; any other scheme loses its link
  and keeps its text.
- nh3 is the last gate on every HTML string returned here: an allow-list of exactly the
  tags, attributes and classes this renderer produces, `rel` and `target` forced on links.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml, unescapeAll
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

__all__ = [
    "RENDERER",
    "code_html",
    "is_safe_url",
    "parse",
    "render_markdown",
    "render_tokens",
    "sanitize",
]

SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# Browsers drop ASCII whitespace and control characters around a URL and tabs and
# newlines inside it, so `java\tscript:` is still `javascript:`: strip them before the check.
_URL_NOISE_RE = re.compile(r"[\x00-\x20\x7f]")
_LANG_RE = re.compile(r"[A-Za-z0-9_+#.\-]{1,40}")
_ALIGN_RE = re.compile(r"text-align:\s*(left|center|right)")


class _Markdown(MarkdownIt):
    """Accepts every link destination at parse time; `_secure_links` decides later.

    markdown-it's own check would leave `[text](javascript:…)` as literal Markdown; we
    want the text kept and the link dropped, which needs the link token.
    """

    def validateLink(self, url: str) -> bool:
        return True


def is_safe_url(url: str) -> bool:
    """True for http(s), mailto and scheme-less (relative, anchor) URLs."""
    match = _SCHEME_RE.match(_URL_NOISE_RE.sub("", url))
    return match is None or match.group(1).lower() in SAFE_SCHEMES


def _secure_links(state: StateCore) -> None:
    """Core rule: unsafe links lose their tags; images in links are marked; alignment
    styles become classes."""
    for token in state.tokens:
        if token.type in ("th_open", "td_open"):
            style = token.attrs.pop("style", None)
            match = _ALIGN_RE.search(str(style)) if style is not None else None
            if match is not None:
                token.attrSet("class", f"align-{match.group(1)}")
        if token.type != "inline" or not token.children:
            continue
        kept: list[Token] = []
        dropped: list[bool] = []  # one entry per open link: was its tag dropped?
        for child in token.children:
            if child.type == "link_open":
                drop = not is_safe_url(str(child.attrGet("href") or ""))
                dropped.append(drop)
                if drop:
                    continue
            elif child.type == "link_close":
                if dropped and dropped.pop():
                    continue
            elif child.type == "image":
                child.meta["in_link"] = not all(dropped)
            kept.append(child)
        token.children = kept


def _lexer(lang: str) -> Lexer | None:
    if not lang:
        return None
    try:
        return get_lexer_by_name(lang, stripnl=False)
    except ClassNotFound:
        return None


def code_html(code: str, lang: str) -> str:
    """A code block: highlighted by classes when Pygments knows `lang`, else escaped."""
    label = lang if _LANG_RE.fullmatch(lang) else ""
    lexer = _lexer(label)
    body = escapeHtml(code) if lexer is None else highlight(code, lexer, _FORMATTER)
    return (
        f'<div class="codeblock" data-lang="{escapeHtml(label)}">'
        f'<pre class="highlight"><code>{body}</code></pre></div>\n'
    )


def open_code_html(code: str, lang: str) -> str:
    """A code block still being written: the same box, its text escaped, not highlighted."""
    label = lang if _LANG_RE.fullmatch(lang) else ""
    return (
        f'<div class="codeblock" data-lang="{escapeHtml(label)}">'
        f'<pre class="highlight"><code>{escapeHtml(code)}</code></pre></div>'
    )


def _render_fence(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    info = unescapeAll(token.info).strip()
    return code_html(token.content, info.split(maxsplit=1)[0] if info else "")


def _render_code_block(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return code_html(tokens[idx].content, "")


def _render_image(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    alt = renderer.renderInlineAsText(token.children or [], options, env)
    src = str(token.attrGet("src") or "")
    if token.meta.get("in_link") or not src or not is_safe_url(src):
        return escapeHtml(alt)
    title = token.attrGet("title")
    title_attr = f' title="{escapeHtml(str(title))}"' if title else ""
    return f'<a href="{escapeHtml(src)}"{title_attr}>{escapeHtml(alt or src)}</a>'


def _build() -> MarkdownIt:
    md = _Markdown("commonmark", {"html": False, "linkify": False}).enable(
        ["table", "strikethrough"]
    )
    md.core.ruler.push("hxchat_secure_links", _secure_links)
    md.add_render_rule("fence", _render_fence)
    md.add_render_rule("code_block", _render_code_block)
    md.add_render_rule("image", _render_image)
    return md


def _cleaner() -> nh3.Cleaner:
    pygments_classes = {name for name in STANDARD_TYPES.values() if name}
    align = {"align-left", "align-center", "align-right"}
    return nh3.Cleaner(
        tags={
            *("p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote"),
            *("pre", "code", "span", "div", "table", "thead", "tbody", "tr", "th", "td"),
            *("em", "strong", "s", "del", "a", "hr", "br"),
        },
        clean_content_tags={"script", "style"},
        attributes={"ol": {"start"}, "a": {"href", "title"}, "div": {"data-lang"}},
        allowed_classes={
            "span": pygments_classes,
            "pre": {"highlight"},
            "div": {"codeblock"},
            "th": align,
            "td": align,
        },
        set_tag_attribute_values={"a": {"target": "_blank"}},
        link_rel="noopener noreferrer nofollow",
        url_schemes=set(SAFE_SCHEMES),
        strip_comments=True,
    )


# Built once at import and only read afterwards (no per-call set-up, no shared state).
_MD = _build()
_FORMATTER = HtmlFormatter(nowrap=True)
_CLEANER = _cleaner()


def _fingerprint() -> str:
    """Which renderer this is: this module's own code and the versions of the libraries
    it drives. The store keeps an answer's HTML with it (`store/rendered.py`), and HTML
    kept by any other renderer is rendered again: a change here, or an upgrade of
    markdown-it-py, Pygments or nh3, can change the HTML, and nobody has to remember to
    say so."""
    parts = [Path(__file__).read_bytes()]
    parts += [f"{name} {version(name)}".encode() for name in ("markdown-it-py", "Pygments", "nh3")]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


RENDERER = _fingerprint()


def sanitize(markup: str) -> str:
    """The final gate: keep only what this renderer produces."""
    return _CLEANER.clean(markup)


def parse(text: str, env: dict[str, Any]) -> list[Token]:
    """Block and inline tokens of `text`; `env` collects link reference definitions."""
    return _MD.parse(text, env)


def render_tokens(tokens: Sequence[Token], env: dict[str, Any]) -> str:
    """Sanitized HTML of tokens from `parse` (whole top-level blocks)."""
    return sanitize(_MD.renderer.render(tokens, _MD.options, env))


def render_markdown(text: str) -> str:
    """Sanitized HTML of a whole Markdown text."""
    return sanitize(_MD.render(text))
