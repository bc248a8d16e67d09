"""One conversation as Markdown: its title, then each message of the path it shows,
with who wrote it, the model and the sources (a file to read, keep or paste)."""

from __future__ import annotations

from typing import Any

_ROLE_NAMES = {"user": "User", "assistant": "Assistant"}
_NOTES = {
    "stopped": "Stopped before the end.",
    "interrupted": "Interrupted by a restart.",
    "error": "The model did not answer",
    "streaming": "Still being written when this was exported.",
}


def _plain(text: str) -> str:
    """Text inside a link or heading: no line breaks, brackets escaped."""
    return " ".join(text.split()).replace("[", "\\[").replace("]", "\\]")


def conversation_markdown(conversation: dict[str, Any]) -> str:
    """`conversation` as `export.conversation` shapes it, in Markdown."""
    by_id = {m["id"]: m for m in conversation["messages"]}
    lines = [f"# {_plain(conversation['title'])}", ""]
    for message_id in conversation["path"]:
        message = by_id[message_id]
        heading = _ROLE_NAMES.get(message["role"], message["role"])
        if message["role"] == "assistant" and message["model"]:
            heading += f" · {_plain(message['model'])}"
        lines += [f"## {heading}", "", message["content"].rstrip(), ""]
        note = _NOTES.get(message["status"])
        if note and message["status"] == "error":
            note += f": {message['error'] or 'unknown error'}."
        if note:
            lines += [f"*{note}*", ""]
        if message["sources"]:
            lines += ["Sources:", ""]
            for number, source in enumerate(message["sources"], start=1):
                title = _plain(source["title"]) or source["url"]
                lines.append(f"{number}. [{title}](<{source['url'].replace('>', '%3E')}>)")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
