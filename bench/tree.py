"""Conversations with a history of versions, for the benchmarks (#10), and three models.

`fill_trees` writes, straight into a server's SQLite file, a tree under each of the
given (empty) conversations: `turns` turns, each a question in `edits` versions with
`versions` answers under each, the path running through the newest of each (as after
edits and regenerations). Writing rows is what makes a tree of thousands of answers in
seconds; the schema is the app's (`hxchat.store.tables`). The answers on the path are
the echo model's and the others rotate over the three models of `THREE_MODELS_ENV`, so
a conversation goes on with echo, which a benchmark can drive offline. Every answer's
text is its own (a first line names it), as every answer's HTML is.

`THREE_MODELS_ENV` offers two more models beside echo (the default), `openai:` and
`ollama:` models named one by one: built at start-up, they need no endpoint until one
is asked to answer, which the benchmarks never do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.bench_render import mixed
from hxchat.store.records import sources_to_json

UNREACHABLE = "http://127.0.0.1:9/v1"  # the discard port: never asked
THREE_MODELS_ENV = {
    "HXCHAT_MODELS": "openai:bench-a,ollama:bench-b",
    "OPENAI_BASE_URL": UNREACHABLE,
    "OLLAMA_BASE_URL": UNREACHABLE,
}
MODELS = ("echo", "openai:bench-a", "ollama:bench-b")

_INSERT = (
    "INSERT INTO messages (conversation_id, parent_id, role, content, status, sources, "
    "created_at, updated_at, model, input_tokens, output_tokens, first_text_ms, total_ms) "
    "VALUES (?, ?, ?, ?, 'complete', ?, ?, ?, ?, ?, ?, ?, ?)"
)


def fill_trees(
    database: Path,
    conversation_ids: Sequence[str],
    *,
    turns: int,
    versions: int,
    edits: int = 1,
    answer_words: int = 60,
) -> int:
    """Write the tree (see the module) under each conversation; returns the messages
    written. The conversations must exist and be empty."""
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")  # as SQLite keeps it
    answer = mixed(answer_words)
    sources = sources_to_json([])
    written = 0
    with sqlite3.connect(database, timeout=60) as db:
        for cid in conversation_ids:
            parent: int | None = None
            for turn in range(turns):
                leaf = parent
                for edit in range(edits):
                    question = f"Question {turn + 1}, version {edit + 1}: tell me more."
                    user = _insert(db, cid, parent, "user", question, sources, now, None)
                    for version in range(versions):
                        newest = version == versions - 1
                        model = MODELS[0] if newest else MODELS[(version + 1) % len(MODELS)]
                        text = (
                            f"Answer {version + 1} to question {turn + 1}.{edit + 1}.\n\n{answer}"
                        )
                        last = _insert(db, cid, user, "assistant", text, sources, now, model)
                    written += 1 + versions
                    leaf = last  # the newest answer to the newest question
                parent = leaf
            db.execute(
                "UPDATE conversations SET current_leaf_id = ?, title = ? WHERE id = ?",
                (parent, f"A tree of {turns} turns", cid),
            )
    return written


def _insert(
    db: sqlite3.Connection,
    cid: str,
    parent: int | None,
    role: str,
    content: str,
    sources: str,
    now: str,
    model: str | None,
) -> int:
    cost: tuple[int | None, ...] = (None, None, None, None)
    if role == "assistant":
        cost = (40, len(content.split()), 300, 2400)
    cursor = db.execute(_INSERT, (cid, parent, role, content, sources, now, now, model, *cost))
    assert cursor.lastrowid is not None
    return cursor.lastrowid
