"""Jinja2 templates, located from the package; pages and fragments share them.

A fragment is a named block of a page template (htmx "template fragments"), so the
first page load and the live updates use the same markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from hxchat import __version__
from hxchat.domain import MessageStatus, cost_words
from hxchat.providers.catalogue import ModelInfo, label_of
from hxchat.render.cache import RenderedAnswers
from hxchat.search_text import marked
from hxchat.store.base import Message
from hxchat.web.answer_html import current_html
from hxchat.web.wire import BrowserEvent

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
CACHED_PAGES = 256


def status_note(message: Message) -> str:
    """The short note under an answer that did not complete."""
    if message.status is MessageStatus.STOPPED:
        return "Stopped"
    if message.status is MessageStatus.INTERRUPTED:
        return "Interrupted by a restart"
    if message.status is MessageStatus.ERROR:
        return f"The model did not answer: {message.error or 'unknown error'}"
    return ""


def answer_cost(message: Message) -> list[str]:
    """What the answer's footer says after its model ("312 tokens", "4.2 s")."""
    return cost_words(message.usage, message.timing)


def site(url: str) -> str:
    """The host a source link points to, shown beside its title."""
    return urlsplit(url).hostname or url


class Templates:
    def __init__(self) -> None:
        self.rendered = RenderedAnswers()
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self.env.globals.update(
            version=__version__,
            answer_html=self.answer_html,
            status_note=status_note,
            answer_cost=answer_cost,
            wire=BrowserEvent,  # the browser stream's event names: {{ wire.BODY }}
        )
        self.offer(tuple)
        self.env.filters["site"] = site
        self.env.filters["model_label"] = label_of  # "gpt-4o-mini (openai)"
        self.env.filters["marked"] = marked  # a search result's words: (piece, matched)
        self._cached: dict[tuple[object, ...], str] = {}

    def answer_html(self, message: Message) -> Markup:
        """A stored answer as sanitised HTML: as the store keeps it when the current
        renderer made it (`web/answer_html.py`), else rendered once, then remembered."""
        html = current_html(message)
        if html is None:
            html = self.rendered(message.content)
        return Markup(html)  # noqa: S704 - nh3-sanitised, by our renderer only

    def offer(self, models: Callable[[], Sequence[ModelInfo]]) -> None:
        """Where the templates read the models offered now (the catalogue's, which an
        endpoint's list changes): an answer's `Regenerate` offers them."""
        self.env.globals["offered_models"] = models

    def page(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context)

    def cached_page(self, name: str, **context: str | bool | None) -> str:
        """A page that depends on nothing but `context` (plain values), rendered once
        per distinct context (the last `CACHED_PAGES` kept): for answers that must cost
        next to nothing, such as a locked-out sign-in's refusal."""
        key = (name, *sorted(context.items()))
        page = self._cached.get(key)
        if page is None:
            page = self.page(name, **context)
            if len(self._cached) >= CACHED_PAGES:
                del self._cached[next(iter(self._cached))]  # the oldest
            self._cached[key] = page
        return page

    def block(self, name: str, block: str, **context: Any) -> str:
        """Render one named block of a template: a fragment."""
        template = self.env.get_template(name)
        render = template.blocks[block]
        return "".join(render(template.new_context(context)))

    def macro(self, name: str, macro: str, *args: Any, **kwargs: Any) -> str:
        module = self.env.get_template(name).module
        return str(getattr(module, macro)(*args, **kwargs))
