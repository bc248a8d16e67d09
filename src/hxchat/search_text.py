"""The words of a search and the snippets of its results, in plain Python (#12).

A search is never handed to the database's query syntax as it was typed: it is cut
into words here (`words`), and each word becomes a quoted term that the store builds
itself (`store.search_query`), so quotes, `*`, `NEAR`, `:`, `&`, `|`, `!`, `(`, `-`
and `^` are only characters of words. The database's tokenizer decides what a word
is in the text (letters and digits of any script, accents folded); `fold` is the
same idea here, for marking the words of a result that matched (`marked`) and for
choosing where its snippet starts (`snippet`).
"""

from __future__ import annotations

import re
import unicodedata

MAX_QUERY_CHARS = 500  # a longer search is refused: a search is a few words
MAX_WORDS = 8  # the rest of a longer search is left out (each word is a term to match)
SNIPPET_CHARS = 160
ELLIPSIS = "…"

# Letters and digits of any script (`\w` without the underscore): a word of the text.
_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """Lower case without accents: `Café` -> `cafe` (what the index compares)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def clean(query: str) -> str:
    """The search without control characters (a NUL or a lone surrogate is no word and
    no database accepts it), whitespace collapsed."""
    kept = "".join(" " if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") else c for c in query)
    return " ".join(kept.split())


def chunks(query: str) -> list[str]:
    """The search cut at whitespace, each piece holding at least one letter or digit,
    at most `MAX_WORDS` of them: each becomes one quoted term of the query."""
    return [piece for piece in clean(query).split(" ") if _WORD.search(piece)][:MAX_WORDS]


def words(query: str) -> list[str]:
    """The folded words of the search, for marking and snippets."""
    return [fold(w) for piece in chunks(query) for w in _WORD.findall(piece)]


def _matches(word: str, terms: list[str]) -> bool:
    folded = fold(word)
    return any(folded.startswith(term) for term in terms)


def marked(text: str, terms: list[str]) -> list[tuple[str, bool]]:
    """`text` as pieces, each with whether it is a word that a term matches (as a
    whole or as its prefix): a template marks those, escaping every piece."""
    pieces: list[tuple[str, bool]] = []
    at = 0
    for found in _WORD.finditer(text):
        if not _matches(found.group(), terms):
            continue
        if found.start() > at:
            pieces.append((text[at : found.start()], False))
        pieces.append((found.group(), True))
        at = found.end()
    if at < len(text):
        pieces.append((text[at:], False))
    return pieces


def snippet(text: str, terms: list[str], size: int = SNIPPET_CHARS) -> str:
    """Plain text of about `size` characters around the first word a term matches
    (the text's start when none does), cut between words, on one line."""
    flat = " ".join(text.split())
    first = next((m for m in _WORD.finditer(flat) if _matches(m.group(), terms)), None)
    start = 0 if first is None else max(0, first.start() - size // 3)
    if start > 0:
        space = flat.rfind(" ", 0, start)
        start = space + 1 if space >= 0 and start - space < size // 3 else start
    end = start + size
    if end < len(flat):
        space = flat.rfind(" ", start, end)
        end = space if space > start else end
    head = ELLIPSIS if start > 0 else ""
    tail = ELLIPSIS if end < len(flat) else ""
    return head + flat[start:end].strip() + tail
