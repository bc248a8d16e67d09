"""The secrets of sessions and API tokens: random, shown once, stored as digests.

A secret is 32 random bytes (URL-safe base64), so a plain SHA-256 is enough to keep
it: nobody can guess their way back from the digest, and finding a session by its
digest is one indexed lookup. API tokens carry a prefix (`hxc_`) that says what they
are, to a person and to secret scanners.
"""

from __future__ import annotations

import hashlib
import secrets

SESSION_COOKIE = "hxchat_login"
TOKEN_PREFIX = "hxc_"  # noqa: S105 - a prefix, not a secret


def new_session_secret() -> str:
    return secrets.token_urlsafe(32)


def new_api_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What the database keeps of a secret: its SHA-256, in hex."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()
