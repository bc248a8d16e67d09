"""Finished answers keep their rendered HTML, so a page shows them without rendering.

Rendering an answer's Markdown (markdown-it-py, Pygments, nh3) costs a few
milliseconds; a page with 50 answers spent most of its time there on every first view
(the in-memory cache, `render/cache.py`, is empty after a restart and holds one
worker's answers). The HTML is a pure function of the text and of the renderer, so
it is kept in the answer's row with the renderer that made it (`rendered_by`); HTML
by another renderer is ignored and replaced (`web/answer_html.py`).

Only the server writes it, with HTML its renderer has just made and sanitised (a
page that rendered an answer, the browser stream at an answer's end); nothing that a
client sends or an import carries reaches these columns. The write holds only while
the answer has ended and its text is still the one rendered, so HTML never describes
another text; a second writer with the same renderer changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, or_, update
from sqlalchemy.engine import Connection

from hxchat.store.base import KeptHtml
from hxchat.store.leases import STREAMING
from hxchat.store.tables import messages

_KEEP = (
    update(messages)
    .where(
        messages.c.id == bindparam("message"),
        messages.c.status != STREAMING,
        messages.c.content == bindparam("text"),
        or_(messages.c.rendered_by.is_(None), messages.c.rendered_by != bindparam("renderer")),
    )
    .values(rendered_html=bindparam("html"), rendered_by=bindparam("renderer"))
)


def keep(conn: Connection, kept: Sequence[KeptHtml]) -> None:
    """Write each answer's HTML, where it still holds (one statement for all)."""
    conn.execute(
        _KEEP,
        [
            {
                "message": k.message_id,
                "text": k.content,
                "html": k.rendered.html,
                "renderer": k.rendered.renderer,
            }
            for k in kept
        ],
    )
