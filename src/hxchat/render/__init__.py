"""Markdown to safe HTML, whole (`render_markdown`) or while it streams
(`IncrementalRenderer`).

Every HTML string that leaves this package has passed nh3's allow-list.
"""

from hxchat.render.incremental import IncrementalRenderer, RenderUpdate
from hxchat.render.markdown import render_markdown

__all__ = ["IncrementalRenderer", "RenderUpdate", "render_markdown"]
