"""Markdown to safe HTML, whole (`render_markdown`) or while it streams
(`IncrementalRenderer`); `escape_text` for text shown as typed (user messages).

Every HTML string that leaves this package has passed nh3's allow-list.
"""

from hxchat.render.incremental import IncrementalRenderer, RenderUpdate
from hxchat.render.markdown import escape_text, render_markdown

__all__ = ["IncrementalRenderer", "RenderUpdate", "escape_text", "render_markdown"]
