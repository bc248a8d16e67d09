"""Usernames: what a name may be, wherever it comes from (a form, a provider, a proxy)."""

from __future__ import annotations

import unicodedata

from hxchat.errors import InvalidMessage

MAX_NAME = 64


class InvalidName(InvalidMessage):
    default_detail = f"A username has 1 to {MAX_NAME} characters, none of them control characters."


def check_name(name: str, *, limit: int = MAX_NAME, what: str = "username") -> str:
    name = name.strip()
    if not name or len(name) > limit:
        raise InvalidName(f"A {what} has 1 to {limit} characters.")
    if any(unicodedata.category(c)[0] == "C" for c in name):
        raise InvalidName(f"A {what} may not contain control characters.")
    return name
