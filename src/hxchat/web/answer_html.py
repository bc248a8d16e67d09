"""A page's finished answers as HTML: kept by the store, rendered only when missing.

An answer whose row holds HTML by the current renderer (`render.markdown.RENDERER`) is
shown as it is; any other finished answer (written before hxchat kept HTML, written
by an API client whose stream nobody rendered, imported, or rendered by an older
renderer) is rendered here, through the worker's cache (`render/cache.py`), and its
HTML is then kept in the store for every later view, on any worker and after a
restart (`store/rendered.py`). Rendering is the renderer's, so the kept HTML is
exactly what rendering gives, sanitised.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from hxchat.domain import MessageStatus, Role
from hxchat.errors import StoreUnavailable
from hxchat.render.cache import RenderedAnswers
from hxchat.render.markdown import RENDERER
from hxchat.store.base import Conversation, KeptHtml, Message, Rendered, Store

logger = logging.getLogger(__name__)


def current_html(message: Message) -> str | None:
    """The answer's kept HTML when the current renderer made it, else None."""
    kept = message.rendered
    return kept.html if kept is not None and kept.renderer == RENDERER else None


def fill(
    conversation: Conversation, rendered: RenderedAnswers
) -> tuple[Conversation, list[KeptHtml]]:
    """The conversation with every finished answer's current HTML, and the HTML
    rendered here, to keep."""
    fresh: list[KeptHtml] = []
    shown: list[Message] = []
    for m in conversation.messages:
        finished = m.role is Role.ASSISTANT and m.status is not MessageStatus.STREAMING
        if finished and current_html(m) is None:
            now = Rendered(rendered(m.content), RENDERER)
            fresh.append(KeptHtml(m.id, m.content, now))
            m = replace(m, rendered=now)
        shown.append(m)
    if not fresh:
        return conversation, fresh
    return replace(conversation, messages=tuple(shown)), fresh


async def keep(store: Store, fresh: list[KeptHtml]) -> None:
    """Keep HTML just rendered; a store that cannot take it now only costs a render
    on a later view."""
    try:
        await store.keep_rendered(fresh)
    except StoreUnavailable as error:
        logger.warning("rendered answers not kept: %s", error)
