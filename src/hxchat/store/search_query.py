"""Searching the index of `store.search`: the query built from quoted words (#12).

What was typed never reaches the query syntax: `search_text.chunks` cuts it at
whitespace, and each piece becomes a term built here with its quotes escaped.

- SQLite (FTS5): each piece is a quoted string followed by `*`: a phrase of the words
  the tokenizer finds in it, the last one as a prefix (`"foo.ba"*` finds `foo.bar`).
  The terms are ANDed, and limited to the owner's rows by the `owner` column (one
  token, the hex of the owner's id) in the same expression, so that FTS5's index
  does that too. Best first is bm25, a title weighing three times a message, among
  the newest `RANKED` matching messages and every matching title (two statements:
  FTS5 finds the cut-off rowid walking its matches newest first, then ranks above it).
- PostgreSQL: the pieces are turned into lexemes by the database itself (its parser
  and `hxchat_search`, with accents folded as in the index), and the tsquery is built
  here from them, each quoted and a prefix (`'lexeme':*`), ANDed, and cast, never
  parsed by `to_tsquery`. Best first is `ts_rank`, a title (weight A) weighing three
  times a message (D), among the newest `RANKED` matching messages (the owner's
  messages newest first through the index on (owner, message_id), or the GIN index's
  matches sorted: the planner picks by how common the words are) and every title.

A title that matches gives a result pointing at the first message of the
conversation's path (a conversation with no message written is left out).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from hxchat.search_text import chunks, snippet, words
from hxchat.store.base import SearchHit

MAX_RESULTS = 50
# Only the newest this many matching messages are ranked: a word found in most of a
# big library would otherwise have every one of its messages scored (seconds), and
# among thousands of matches the newest are what a person looks for.
RANKED = 2_000

# Scores only (reading a row's other columns costs a lookup each, for every match).
_SQLITE_SCORED = (
    "SELECT rowid AS id, bm25(search_index, 0.0, 0.0, 3.0, 1.0) AS score"
    " FROM search_index WHERE search_index MATCH :match"
)
# The rowid of the match `:depth` places below the newest, if there are that many
# (titles: their rowids go down as they are made, so the newest are the lowest).
_SQLITE_DEPTH = text(
    "SELECT rowid FROM search_index WHERE search_index MATCH :match AND rowid > 0"
    " ORDER BY rowid DESC LIMIT 1 OFFSET :depth"
)
_SQLITE_TITLES_DEPTH = text(
    "SELECT rowid FROM search_index WHERE search_index MATCH :match AND rowid < 0"
    " ORDER BY rowid LIMIT 1 OFFSET :depth"
)
_SQLITE_MESSAGES = text(
    f"{_SQLITE_SCORED} AND rowid >= :since ORDER BY score, rowid DESC LIMIT :limit"
)
_SQLITE_TITLES = text(
    f"{_SQLITE_SCORED} AND rowid < 0 AND rowid <= :since ORDER BY score LIMIT :limit"
)
_SQLITE_CONVERSATIONS = text(
    "SELECT rowid AS id, conversation FROM search_index WHERE rowid IN :ids"
).bindparams(bindparam("ids", expanding=True))
_SQLITE_FIRST = text(
    "SELECT conversation, min(rowid) AS id FROM search_index"
    " WHERE search_index MATCH :match AND rowid > 0 GROUP BY conversation"
)
_POSTGRES_LEXEMES = text("SELECT tsvector_to_array(to_tsvector('hxchat_search', :typed))")
_POSTGRES_FIND = text(
    "WITH q AS (SELECT CAST(:tsquery AS tsquery) AS query,"
    " CAST('{0.1, 0.2, 0.4, 0.3}' AS FLOAT4[]) AS weights),"
    " newest AS (SELECT message_id FROM search_messages, q"
    " WHERE owner = :owner AND document @@ q.query ORDER BY message_id DESC LIMIT :depth)"
    " SELECT id, conversation_id, score FROM ("
    " SELECT message_id AS id, conversation_id, ts_rank(q.weights, document, q.query) AS score"
    " FROM search_messages, q WHERE message_id IN (SELECT message_id FROM newest)"
    " UNION ALL"
    " SELECT NULL, conversation_id, ts_rank(q.weights, document, q.query)"
    " FROM search_titles, q WHERE owner = :owner AND document @@ q.query) AS found"
    " ORDER BY score DESC, id DESC NULLS FIRST LIMIT :limit"
)
_POSTGRES_FIRST = text(
    "SELECT conversation_id AS conversation, min(message_id) AS id FROM search_messages"
    " WHERE conversation_id = ANY(CAST(:ids AS VARCHAR[])) GROUP BY conversation_id"
)
_CONVERSATIONS = text("SELECT id, title FROM conversations WHERE id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)
_MESSAGES = text("SELECT id, content FROM messages WHERE id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)


def fts5_string(piece: str) -> str:
    """`piece` as an FTS5 string: in double quotes, its own double quotes doubled."""
    return '"' + piece.replace('"', '""') + '"'


def fts5_match(owner: str, pieces: Sequence[str]) -> str:
    """The FTS5 expression: the owner's rows whose title or body has every piece."""
    terms = " AND ".join(fts5_string(piece) + "*" for piece in pieces)
    return f"owner : {_hex(owner)} AND {{title body}} : ({terms})"


def tsquery(lexemes: Sequence[str]) -> str:
    """The tsquery text of these lexemes: each quoted (quotes and backslashes doubled)
    and a prefix, ANDed."""
    quoted = ("'" + lex.replace("\\", "\\\\").replace("'", "''") + "':*" for lex in lexemes)
    return " & ".join(quoted)


def _hex(value: str) -> str:
    """What SQLite's hex() makes of a text: one token of letters and digits."""
    return value.encode("utf-8").hex().upper()


def find(conn: Connection, owner: str, query: str) -> list[SearchHit]:
    """The owner's best matches for `query`, at most `MAX_RESULTS`, best first."""
    pieces = chunks(query)
    if not pieces:
        return []
    if conn.dialect.name == "postgresql":
        found = _find_postgres(conn, owner, pieces)
    else:
        found = _find_sqlite(conn, owner, pieces)
    return _hits(conn, found, words(query))


def _find_sqlite(conn: Connection, owner: str, pieces: list[str]) -> list[tuple[int | None, str]]:
    match = fts5_match(owner, pieces)
    depth = {"match": match, "depth": RANKED - 1}
    since = conn.scalar(_SQLITE_DEPTH, depth) or 1
    titles_since = conn.scalar(_SQLITE_TITLES_DEPTH, depth) or -1
    values = {"match": match, "limit": MAX_RESULTS}
    rows = [
        *conn.execute(_SQLITE_MESSAGES, {**values, "since": since}),
        *conn.execute(_SQLITE_TITLES, {**values, "since": titles_since}),
    ]
    rows.sort(key=lambda row: (row.score, -row.id))  # bm25: lower is better
    best = [int(row.id) for row in rows[:MAX_RESULTS]]
    of = {
        row.id: bytes.fromhex(row.conversation).decode()
        for row in conn.execute(_SQLITE_CONVERSATIONS, {"ids": best})
    }
    found = [(rowid if rowid > 0 else None, of[rowid]) for rowid in best if rowid in of]
    titled = {conversation for message_id, conversation in found if message_id is None}
    first: dict[str, int] = {}
    if titled:
        match = "conversation : (" + " OR ".join(_hex(c) for c in sorted(titled)) + ")"
        for row in conn.execute(_SQLITE_FIRST, {"match": match}):
            first[bytes.fromhex(row.conversation).decode()] = int(row.id)
    return _with_first_messages(found, first)


def _find_postgres(conn: Connection, owner: str, pieces: list[str]) -> list[tuple[int | None, str]]:
    lexemes = conn.scalar(_POSTGRES_LEXEMES, {"typed": " ".join(pieces)}) or []
    if not lexemes:
        return []
    rows = conn.execute(
        _POSTGRES_FIND,
        {
            "tsquery": tsquery(lexemes[:16]),
            "owner": owner,
            "limit": MAX_RESULTS,
            "depth": RANKED,
        },
    ).all()
    found = [(row.id, row.conversation_id) for row in rows]
    titled = sorted({conversation for message_id, conversation in found if message_id is None})
    first: dict[str, int] = {}
    if titled:
        for row in conn.execute(_POSTGRES_FIRST, {"ids": titled}):
            first[row.conversation] = int(row.id)
    return _with_first_messages(found, first)


def _with_first_messages(
    found: list[tuple[int | None, str]], first: dict[str, int]
) -> list[tuple[int | None, str]]:
    """Title matches point at their conversation's first message; without one (no
    message written yet), they are left out. Each message is listed once."""
    result: list[tuple[int | None, str]] = []
    seen: set[int] = set()
    for message_id, conversation in found:
        target = message_id if message_id is not None else first.get(conversation)
        if target is None or target in seen:
            continue
        seen.add(target)
        result.append((target, conversation))
    return result


def _hits(conn: Connection, found: list[tuple[Any, str]], terms: list[str]) -> list[SearchHit]:
    if not found:
        return []
    conversation_ids = sorted({conversation for _, conversation in found})
    message_ids = sorted({int(message_id) for message_id, _ in found})
    titles = {row.id: row.title for row in conn.execute(_CONVERSATIONS, {"ids": conversation_ids})}
    contents = {row.id: row.content for row in conn.execute(_MESSAGES, {"ids": message_ids})}
    return [
        SearchHit(
            conversation_id=conversation,
            title=titles[conversation],
            message_id=int(message_id),
            snippet=snippet(contents[message_id], terms),
        )
        for message_id, conversation in found
        if conversation in titles and message_id in contents
    ]
