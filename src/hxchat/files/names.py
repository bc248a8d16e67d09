"""A file's name as hxchat keeps and shows it.

The name a client gave is only a label: it never decides the type, and it never
reaches a path (contents are stored under their hash). It is still shown in pages and
sent in `Content-Disposition`, so what could mislead there goes: any path part,
control characters (NUL, newlines) and the bidirectional controls that make
`gpj.exe` read as `exe.jpg`.
"""

from __future__ import annotations

import unicodedata

MAX_NAME_CHARS = 255
FALLBACK_NAME = "file"
# The explicit directional formatting characters (embeddings, overrides, isolates, marks).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_name(given: str | None) -> str:
    """The client's name without any path part (everything up to the last `/` or `\\`),
    control or bidirectional-override characters, cut to 255 characters; `file` when
    nothing is left."""
    name = (given or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        c for c in name if c not in _BIDI and unicodedata.category(c) not in ("Cc", "Cs")
    )
    name = name[:MAX_NAME_CHARS]
    return name if name.strip() else FALLBACK_NAME
