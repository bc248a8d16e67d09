"""hxchat's `web_search` tool as the Chat Completions API sees it: the tool's
declaration, a call as its deltas arrive, and the tool message that answers it (numbered
results, the numbers kept across the rounds of one answer so that citations stay
right)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openai.types.chat import ChatCompletionToolUnionParam

from hxchat.providers.search import SearchHit, format_results

WEB_SEARCH_TOOL: ChatCompletionToolUnionParam = {
    "type": "function",
    "function": {
        "name": "web_search",
        "description": (
            "Search the web for current or factual information. Returns numbered "
            "results (title, URL, snippet); cite them in the answer as [n]."
        ),
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "what to search for"}},
            "required": ["query"],
        },
    },
}


@dataclass
class PendingCall:
    """A tool call as its deltas arrive: id and name once, arguments in pieces."""

    id: str = ""
    name: str = ""
    arguments: str = ""


def search_query(call: PendingCall) -> str | None:
    """The search query of a well-formed `web_search` call, else None."""
    if call.name != "web_search":
        return None
    try:
        arguments: Any = json.loads(call.arguments or "{}")
    except ValueError:
        return None
    query = arguments.get("query") if isinstance(arguments, dict) else None
    return query.strip() if isinstance(query, str) and query.strip() else None


def number_new(hits: Sequence[SearchHit], numbers: dict[str, int]) -> list[SearchHit]:
    """Give each new page the next number; pages seen in an earlier round keep theirs."""
    new = []
    for hit in hits:
        if hit.url not in numbers:
            numbers[hit.url] = len(numbers) + 1
            new.append(hit)
    return new


def tool_reply(hits: Sequence[SearchHit], new: Sequence[SearchHit], numbers: dict[str, int]) -> str:
    """The tool message: numbered snippets, numbering continued across rounds."""
    if not hits:
        return "No results."
    reply = format_results(new, start=numbers[new[0].url]) if new else ""
    again = sorted({numbers[hit.url] for hit in hits} - {numbers[hit.url] for hit in new})
    if again:
        listed = ", ".join(f"[{number}]" for number in again)
        reply += ("\n\n" if reply else "") + f"Also found again: {listed} (see above)."
    return reply
