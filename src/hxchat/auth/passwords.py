"""Passwords: argon2id through pwdlib, never the password itself.

Hashing and checking cost about 0.1 s of one core each (64 MiB, 3 passes: argon2's
recommended parameters, see bench/bench_auth.py for this machine's figure), so they run
in a worker thread, where argon2 releases the GIL, and the event loop goes on serving
streams. Checking a password for a user who does not exist checks it against a dummy
hash of the same parameters: the answer and its time do not tell whether the user
exists.
"""

from __future__ import annotations

import asyncio
from functools import cache

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from hxchat.errors import HxchatError

MIN_LENGTH = 8
MAX_LENGTH = 1024  # a longer "password" is a way to make the server work for nothing


class WeakPassword(HxchatError):
    status_code = 422
    default_detail = f"A password needs at least {MIN_LENGTH} characters."


HASHER = PasswordHash((Argon2Hasher(),))


def check_strength(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise WeakPassword()
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"A password may have at most {MAX_LENGTH} characters.")
    return password


async def hash_password(password: str) -> str:
    check_strength(password)
    return await asyncio.to_thread(HASHER.hash, password)


@cache
def _dummy_hash() -> str:
    return HASHER.hash("a password nobody has, for unknown users")


def verify_now(password: str, stored: str | None) -> bool:
    if len(password) > MAX_LENGTH:
        password = password[:MAX_LENGTH]
    if stored is None:  # no such user, or one who signs in otherwise
        HASHER.verify(password, _dummy_hash())
        return False
    try:
        return HASHER.verify(password, stored)
    except Exception:  # a hash pwdlib cannot read: a wrong password, not a crash
        return False


async def verify_password(password: str, stored: str | None) -> bool:
    """True when `password` matches `stored` (an argon2id hash, or None: no such user,
    which takes as long and answers False)."""
    return await asyncio.to_thread(verify_now, password, stored)
