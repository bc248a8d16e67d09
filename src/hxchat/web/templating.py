"""Jinja2 templates, located from the package; pages and fragments share them.

A fragment is a named block of a page template (htmx "template fragments"), so the
first page load and the live updates use the same markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from hxchat import __version__
from hxchat.domain import MessageStatus
from hxchat.providers.catalogue import label_of
from hxchat.render import render_markdown
from hxchat.store.base import Message
from hxchat.web.wire import BrowserEvent

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
CACHED_PAGES = 256


def answer_html(message: Message) -> Markup:
    """A stored answer as sanitised HTML (rendered once per page view)."""
    return Markup(render_markdown(message.content))  # noqa: S704 - nh3-sanitised


def status_note(message: Message) -> str:
    """The short note under an answer that did not complete."""
    if message.status is MessageStatus.STOPPED:
        return "Stopped"
    if message.status is MessageStatus.INTERRUPTED:
        return "Interrupted by a restart"
    if message.status is MessageStatus.ERROR:
        return f"The model did not answer: {message.error or 'unknown error'}"
    return ""


def site(url: str) -> str:
    """The host a source link points to, shown beside its title."""
    return urlsplit(url).hostname or url


class Templates:
    def __init__(self) -> None:
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self.env.globals.update(
            version=__version__,
            answer_html=answer_html,
            status_note=status_note,
            wire=BrowserEvent,  # the browser stream's event names: {{ wire.BODY }}
        )
        self.env.filters["site"] = site
        self.env.filters["model_label"] = label_of  # "gpt-4o-mini (openai)"
        self._cached: dict[tuple[object, ...], str] = {}

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
