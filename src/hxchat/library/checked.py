"""The values of hxchat's export that the API itself checks: a conversation's `pinned`,
`instructions` and `title_source`, an answer's `usage` and `timing`.

Text (a message, a title) is cleaned and kept, as it always was; these are settings and
figures, and one of the wrong type or out of bounds would be stored as something the
file did not say (a `"yes"` taken as pinned, a token count that does not fit the
column). So each is checked as `PATCH /api/conversations/{id}` checks its fields, and
one that fails refuses the whole file with a sentence that names it. A key that is
missing or null takes the default: files exported before these keys existed import.
"""

from __future__ import annotations

from hxchat.domain import Timing, Usage
from hxchat.library.imported import ImportRefused, clean
from hxchat.store import library

MAX_FIGURE = 2**31 - 1  # an INTEGER column, on SQLite as on PostgreSQL
_TITLE_SOURCES = {
    library.MESSAGE: library.MESSAGE,
    library.PENDING: library.MESSAGE,  # a title the model was writing: the first message's
    library.MODEL: library.MODEL,
    library.USER: library.USER,
}


def pinned(value: object, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ImportRefused(f"{where}: 'pinned' must be true or false.")
    return value


def instructions(value: object, where: str) -> str:
    """Instructions as `PATCH` keeps them: trimmed, at most `MAX_INSTRUCTIONS_CHARS`."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ImportRefused(f"{where}: 'instructions' must be text.")
    text = clean(value).strip()
    if len(text) > library.MAX_INSTRUCTIONS_CHARS:
        raise ImportRefused(
            f"{where}: its instructions have {len(text):,} characters; "
            f"the limit is {library.MAX_INSTRUCTIONS_CHARS:,}."
        )
    return text


def title_source(value: object, where: str) -> str:
    """Who wrote the title (`store/library.py`): a title the user chose stays theirs."""
    if value is None:
        return library.MESSAGE
    source = _TITLE_SOURCES.get(value) if isinstance(value, str) else None
    if source is None:
        raise ImportRefused(f"{where}: 'title_source' must be message, model or user.")
    return source


def usage(value: object, where: str) -> Usage | None:
    """An answer's tokens; None when the file has none."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ImportRefused(
            f"{where}: 'usage' must be an object of input_tokens and output_tokens."
        )
    return Usage(
        _figure(value.get("input_tokens"), "input_tokens", where),
        _figure(value.get("output_tokens"), "output_tokens", where),
    )


def timing(value: object, where: str) -> Timing | None:
    """An answer's times; None when the file has none."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ImportRefused(f"{where}: 'timing' must be an object of first_text_ms and total_ms.")
    total = _figure(value.get("total_ms"), "total_ms", where)
    if total is None:
        raise ImportRefused(f"{where}: 'timing' has no total_ms.")
    return Timing(_figure(value.get("first_text_ms"), "first_text_ms", where), total)


def _figure(value: object, key: str, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_FIGURE:
        raise ImportRefused(f"{where}: '{key}' must be a whole number from 0 to {MAX_FIGURE:,}.")
    return value
