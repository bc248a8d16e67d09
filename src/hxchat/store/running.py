"""How many answers an owner has being written, on every worker, and the exact limit.

`HXCHAT_MAX_ANSWERS_PER_USER` is checked twice. `auth.limits` asks before a request
does anything (so a refused message stores nothing, not even a new conversation); two
requests at the same moment can both pass that check, so the transaction that stores a
new answer counts again (`limit_running`, called first by each of `queries`' four
starts) and refuses the one over the limit. Two such transactions never both pass:
SQLite runs one writing transaction at a time (`BEGIN IMMEDIATE`, see `engine`); on
PostgreSQL the transaction first takes a lock of the owner's (an advisory lock held to
its end), so the second counts only once the first has committed.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.engine import Connection

from hxchat.domain import MessageStatus
from hxchat.errors import TooManyRequests
from hxchat.store.tables import conversations, messages

RETRY_AFTER = 5  # seconds; an answer takes about that long to end

_RUNNING = (
    select(func.count())
    .select_from(messages.join(conversations))
    .where(
        messages.c.status == MessageStatus.STREAMING.value,
        conversations.c.owner == bindparam("owned_by"),
    )
)
_OWNER_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def refusal(running: int) -> TooManyRequests:
    return TooManyRequests(
        f"You already have {running} answers being written; wait for one to finish or "
        "stop it, then send again.",
        retry_after=RETRY_AFTER,
    )


def count_running(conn: Connection, owner: str) -> int:
    """How many answers of `owner` are being written now, on any worker."""
    return int(conn.scalar(_RUNNING, {"owned_by": owner}) or 0)


def limit_running(conn: Connection, owner: str, most: int | None) -> None:
    """Refuse (429) a new answer of `owner` while `most` are being written (None: no
    limit); in the transaction that stores the new answer, before anything else."""
    if most is None:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(_OWNER_LOCK, {"key": _lock_key(owner)})
    running = count_running(conn, owner)
    if running >= most:
        raise refusal(running)


def _lock_key(owner: str) -> int:
    """The owner as a PostgreSQL advisory lock's 64-bit key (a collision only makes two
    owners wait for each other a moment)."""
    return int.from_bytes(hashlib.blake2b(owner.encode(), digest_size=8).digest(), signed=True)
