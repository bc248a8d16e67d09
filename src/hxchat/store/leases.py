"""The conversation lock and the generation lease, as statements on one connection.

Both are conditional UPDATEs whose row count is the answer, so they hold across
workers and hosts without any lock kept in memory:

- the lock: `conversations.active_generation_id` is set only `WHERE ... IS NULL`;
  two concurrent turns on one conversation cannot both take it (`Busy`).
- the lease: an answer being written belongs to one worker until
  `lease_expires_at`. Only that worker renews or finishes it; the sweeper takes back
  only leases that have expired.

A checkpoint renews the lease (one conditional UPDATE) and adds the text written
since the previous checkpoint as a piece, inserted only while the same condition
holds; the answer's end replaces the pieces by its whole text (see `pieces`).

Every function here is synchronous and runs inside the caller's transaction, on the
connection it is given (see `SqlStore`: the same code serves SQLite in its thread and
PostgreSQL through `run_sync`). The frequent statements are built once, below, and
executed with their values: building a SQLAlchemy statement and its cache key costs
~0.1 ms, several times what running it on SQLite does.

Times come from this process's clock (UTC); hosts sharing a PostgreSQL database are
expected to keep their clocks in sync (NTP), far within a lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Text, and_, bindparam, exists, func, insert, select, update
from sqlalchemy.engine import Connection

from hxchat.domain import MessageStatus, Role, Source, Timing, Usage
from hxchat.errors import Busy, NotFound
from hxchat.store import pieces, search
from hxchat.store.base import Checkpoint, Generation
from hxchat.store.records import generation_from_row, sources_to_json
from hxchat.store.tables import conversations, messages, utcnow

STREAMING = MessageStatus.STREAMING.value

# Bind names never repeat a column's name: SQLAlchemy keeps those for UPDATE's SET.

# "This conversation, and it belongs to this owner": binds `conversation` and `owned_by`.
OWNED = and_(
    conversations.c.id == bindparam("conversation"),
    conversations.c.owner == bindparam("owned_by"),
)

_TAKE_LOCK = (  # and, in the same statement, what a new turn needs of the conversation
    update(conversations)
    .where(OWNED, conversations.c.active_generation_id.is_(None))
    .values(active_generation_id=bindparam("generation"), updated_at=bindparam("now"))
    .returning(
        conversations.c.current_leaf_id,
        conversations.c.instructions,
        exists()  # by the parameter, not correlated: SQLite's RETURNING names no tables
        .where(
            messages.c.conversation_id == bindparam("conversation"),
            messages.c.role == Role.USER.value,
        )
        .label("asked"),
    )
)
_CONVERSATION_EXISTS = select(conversations.c.id).where(OWNED)
_FREE_CONVERSATION = (
    update(conversations)
    .where(
        conversations.c.id == bindparam("conversation"),
        conversations.c.active_generation_id == bindparam("generation"),
    )
    .values(active_generation_id=None, updated_at=bindparam("now"))
)

INSERT_MESSAGE = insert(messages).returning(messages.c.id)  # values: a dict of columns

_GENERATION = (
    select(messages, conversations.c.owner)
    .join(conversations, conversations.c.id == messages.c.conversation_id)
    .where(messages.c.generation_id == bindparam("generation"))
)
_GENERATION_OF_OWNER = _GENERATION.where(conversations.c.owner == bindparam("owned_by"))

_HELD = and_(  # the answer is still streaming under this worker
    messages.c.generation_id == bindparam("generation"),
    messages.c.status == STREAMING,
    messages.c.worker_id == bindparam("worker"),
)
# The same, found by the message's id: what a checkpoint renews, once a second for
# every answer, in as few bytes as it can (`updated_at` is left as it was too).
_HELD_MESSAGE = and_(
    messages.c.id == bindparam("message"),
    messages.c.status == STREAMING,
    messages.c.worker_id == bindparam("worker"),
)
_RENEW = (  # the sources only when they changed (None keeps them)
    update(messages)
    .where(_HELD_MESSAGE)
    .values(
        sources=func.coalesce(bindparam("sources_json", type_=Text), messages.c.sources),
        lease_expires_at=bindparam("expires"),
    )
)
_ADD_PIECE = pieces.add_statement(_HELD_MESSAGE)  # per dialect
_HELD_AMONG = select(messages.c.generation_id).where(
    messages.c.generation_id.in_(bindparam("generations", expanding=True)),
    messages.c.status == STREAMING,
    messages.c.worker_id == bindparam("worker"),
)

_FINAL_VALUES: dict[str, Any] = {
    "content": bindparam("text"),
    "status": bindparam("final_status"),
    "sources": bindparam("sources_json"),
    "error": bindparam("error_text"),
    "search_suggestions": bindparam("suggestions"),
    "final_event_id": bindparam("event_id"),
    "input_tokens": bindparam("input_tokens"),
    "output_tokens": bindparam("output_tokens"),
    "first_text_ms": bindparam("first_text_ms"),
    "total_ms": bindparam("total_ms"),
    "lease_expires_at": None,
    "updated_at": bindparam("now"),
}
_RELEASE_ANY = (  # whoever holds it
    update(messages)
    .where(
        messages.c.generation_id == bindparam("generation"),
        messages.c.status == STREAMING,
    )
    .values(**_FINAL_VALUES)
    .returning(messages.c.id, messages.c.conversation_id, messages.c.parent_id)
)
_RELEASE_HELD = (  # only while this worker holds it
    update(messages)
    .where(_HELD)
    .values(**_FINAL_VALUES)
    .returning(messages.c.id, messages.c.conversation_id, messages.c.parent_id)
)
_SET_CONTENT = (
    update(messages).where(messages.c.id == bindparam("message")).values(content=bindparam("text"))
)


@dataclass(frozen=True, slots=True)
class Locked:
    """A conversation taken for a new answer, as it stood then."""

    leaf: int | None  # the end of the path it shows (None: it is empty)
    instructions: str
    asked: bool  # whether it has a user's message (else the next one titles it)


def lock(conn: Connection, owner: str, conversation_id: str, generation_id: str) -> Locked:
    """Take the conversation for `generation_id`, or raise `NotFound` / `Busy`. One
    statement: a turn's start runs on every answer, and on PostgreSQL each statement
    is a round trip."""
    row = conn.execute(
        _TAKE_LOCK,
        {
            "conversation": conversation_id,
            "owned_by": owner,
            "generation": generation_id,
            "now": utcnow(),
        },
    ).first()
    if row is not None:
        leaf = row.current_leaf_id
        return Locked(None if leaf is None else int(leaf), row.instructions or "", bool(row.asked))
    found = conn.scalar(_CONVERSATION_EXISTS, {"conversation": conversation_id, "owned_by": owner})
    raise Busy() if found is not None else NotFound()


def insert_placeholder(
    conn: Connection,
    conversation_id: str,
    generation_id: str,
    worker_id: str,
    lease_seconds: float,
    parent_id: int | None = None,
    model: str | None = None,
) -> int:
    """The assistant message a new generation writes into (following `parent_id`, by
    `model`), leased to `worker_id`."""
    now = utcnow()
    result = conn.execute(
        INSERT_MESSAGE,
        {
            "conversation_id": conversation_id,
            "parent_id": parent_id,
            "role": Role.ASSISTANT.value,
            "content": "",
            "status": STREAMING,
            "sources": "[]",
            "generation_id": generation_id,
            "worker_id": worker_id,
            "lease_expires_at": now + timedelta(seconds=lease_seconds),
            "created_at": now,
            "updated_at": now,
            "model": model,
        },
    )
    return int(result.scalar_one())


def select_generation(conn: Connection, generation_id: str, owner: str | None) -> Generation | None:
    """The generation, scoped to `owner` unless it is None."""
    if owner is None:
        row = conn.execute(_GENERATION, {"generation": generation_id}).first()
    else:
        row = conn.execute(
            _GENERATION_OF_OWNER, {"generation": generation_id, "owned_by": owner}
        ).first()
    if row is None:
        return None
    if row.status != STREAMING:
        return generation_from_row(row, row.owner)
    text = pieces.texts(conn, {row.id: row.content}).get(row.id, row.content)
    return generation_from_row(row, row.owner, content=text)


def renew_many(
    conn: Connection, checkpoints: Sequence[Checkpoint], worker_id: str, lease_seconds: float
) -> set[str]:
    """Extend the leases of these answers and add their checkpoints' text (and changed
    sources), only while `worker_id` holds them; returns the ids it does not hold.

    One UPDATE executed for every generation (`executemany`), then one INSERT of a
    piece for every checkpoint with text, under the same condition. When the UPDATE's
    total row count falls short, or the driver cannot tell (asyncpg), one SELECT names
    the generations that `worker_id` no longer holds (finished, swept, deleted).
    """
    if not checkpoints:
        return set()
    values = _renewal(worker_id, lease_seconds)
    result = conn.execute(_RENEW, [_partial(values, checkpoint) for checkpoint in checkpoints])
    added = [
        {
            "message": checkpoint.message_id,
            "worker": worker_id,
            "piece_start": checkpoint.start,
            "piece_text": checkpoint.text,
        }
        for checkpoint in checkpoints
        if checkpoint.text
    ]
    if added:
        conn.execute(_ADD_PIECE[conn.dialect.name], added)
    if conn.dialect.supports_sane_multi_rowcount and result.rowcount == len(checkpoints):
        return set()
    ids = {checkpoint.generation_id for checkpoint in checkpoints}
    held = conn.scalars(_HELD_AMONG, {"generations": list(ids), "worker": worker_id})
    return ids.difference(held)


def _renewal(worker_id: str, lease_seconds: float) -> dict[str, Any]:
    """The values of `_RENEW` that every generation of one renewal shares."""
    return {"worker": worker_id, "expires": utcnow() + timedelta(seconds=lease_seconds)}


def _partial(renewal: dict[str, Any], checkpoint: Checkpoint) -> dict[str, Any]:
    """The values of `_RENEW` for one generation."""
    sources = checkpoint.sources
    return {
        **renewal,
        "message": checkpoint.message_id,
        "sources_json": None if sources is None else sources_to_json(sources),
    }


def release(
    conn: Connection,
    generation_id: str,
    *,
    content: str,
    status: MessageStatus,
    sources: Sequence[Source],
    error: str | None,
    search_suggestions: str | None,
    final_event_id: str | None,
    worker_id: str | None,
    usage: Usage | None = None,
    timing: Timing | None = None,
) -> bool:
    """Store the final answer (its whole text: its pieces are deleted, with its usage
    and timing) and free the conversation; False if it was not ours."""
    if not status.is_final:
        raise ValueError("finish needs a final status, not streaming")
    now = utcnow()
    values = {
        "generation": generation_id,
        "text": content,
        "final_status": status.value,
        "sources_json": sources_to_json(sources),
        "error_text": error,
        "suggestions": search_suggestions,
        "event_id": final_event_id,
        "input_tokens": usage.input_tokens if usage else None,
        "output_tokens": usage.output_tokens if usage else None,
        "first_text_ms": timing.first_text_ms if timing else None,
        "total_ms": timing.total_ms if timing else None,
        "now": now,
    }
    if worker_id is None:
        row = conn.execute(_RELEASE_ANY, values).first()
    else:
        row = conn.execute(_RELEASE_HELD, {**values, "worker": worker_id}).first()
    if row is None:
        return False
    pieces.forget(conn, [row.id])
    search.add(conn, [row.id])  # found from now on (#12), and the question it answers
    search.add_missing(conn, [row.parent_id] if row.parent_id is not None else [])
    conn.execute(
        _FREE_CONVERSATION,
        {"conversation": row.conversation_id, "generation": generation_id, "now": now},
    )
    return True


def sweep(
    conn: Connection, include_live: bool = False, spare_worker: str | None = None
) -> list[Generation]:
    """Mark streaming answers whose lease has expired `interrupted`, with the text of
    their last checkpoint (their pieces merged into `content`), and free them.

    `include_live` takes every streaming answer, leased or not: only for a single
    process at start-up, whose earlier self left them. `spare_worker`'s answers are
    left alone: a worker that sweeps is alive, so its own late leases are only late
    (an overloaded event loop), not dead. Each answer is returned by
    exactly one of several concurrent sweepers: the UPDATE re-checks `status` on a
    row another sweeper has just changed. (Built per call: a sweep is rare.)
    """
    now = utcnow()
    conditions = [messages.c.status == STREAMING]
    if not include_live:
        conditions.append(messages.c.lease_expires_at < now)
    if spare_worker is not None:
        conditions.append(messages.c.worker_id != spare_worker)
    rows = conn.execute(
        update(messages)
        .where(*conditions)
        .values(status=MessageStatus.INTERRUPTED.value, lease_expires_at=None, updated_at=now)
        .returning(*messages.c)
    ).all()
    if not rows:
        return []
    merged = pieces.texts(conn, {row.id: row.content for row in rows})
    if merged:
        conn.execute(
            _SET_CONTENT, [{"message": message_id, "text": t} for message_id, t in merged.items()]
        )
        pieces.forget(conn, list(merged))
    search.add(conn, [row.id for row in rows])  # the text they kept is found (#12)
    search.add_missing(conn, [row.parent_id for row in rows if row.parent_id is not None])
    conn.execute(
        update(conversations)
        .where(conversations.c.active_generation_id.in_([row.generation_id for row in rows]))
        .values(active_generation_id=None)
    )
    conversation_ids = {row.conversation_id for row in rows}
    owners = {
        row.id: row.owner
        for row in conn.execute(
            select(conversations.c.id, conversations.c.owner).where(
                conversations.c.id.in_(conversation_ids)
            )
        )
    }
    return [
        generation_from_row(row, owners[row.conversation_id], content=merged.get(row.id))
        for row in rows
    ]
