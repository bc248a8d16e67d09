"""An uploaded file as JSON, parsed safely: every refusal is one readable sentence.

`json.loads` recurses once per nesting level, so 100,000 nested brackets would end
in a `RecursionError` (a 500); the depth is measured first, on the bytes, with the
strings cut out by one regular expression (about as fast as the parse itself). A key
named twice in one object (two nodes with one id) would silently keep the last, so
objects are built by a hook that refuses that. A file cut off part-way says so.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from hxchat.library.imported import MAX_DEPTH, ImportRefused

# A JSON string, escapes included, in the unrolled form (no backtracking per
# character). It also takes a string the file leaves open, up to the end: otherwise a
# quote without its end would be tried again from every escaped quote after it, each
# time to the end of the file (quadratic: 32 MB of `\"` would hold a core for hours).
_STRING = re.compile(rb'"[^"\\]*(?:\\(?:.|\Z)[^"\\]*)*(?:"|\Z)', re.DOTALL)
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256  # what a bracket does to the depth (all in C: no Python loop)
for _byte in b"[{":
    _STEP[_byte] = 1
for _byte in b"]}":
    _STEP[_byte] = -1


def nesting_depth(data: bytes) -> int:
    """How deep the arrays and objects of `data` nest (brackets inside strings do not
    count). Cheap: no Python object per value."""
    brackets = _STRING.sub(b"", data).translate(None, _NOT_A_BRACKET)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                shown = key if len(key) <= 60 else key[:57] + "..."
                raise ImportRefused(f"The file names {shown!r} twice in one object.")
            seen.add(key)
    return result


def parse(data: bytes) -> Any:
    """The file's JSON value; `ImportRefused` for anything but a well-formed file."""
    if not data.strip():
        raise ImportRefused("The file is empty.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused("The file is not UTF-8 text, so it is no JSON export.") from None
    if nesting_depth(data) > MAX_DEPTH:
        raise ImportRefused(
            f"The file nests its data more than {MAX_DEPTH} levels deep; "
            "no conversation export does that."
        )
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
            raise ImportRefused(
                "The file ends in the middle of its data: it looks cut off. "
                "Download the export again."
            ) from None
        raise ImportRefused(
            f"The file is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})."
        ) from None
    except RecursionError:  # not reached after the depth check; kept as a guard
        raise ImportRefused("The file nests its data too deeply.") from None
