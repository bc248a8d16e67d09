"""Searching the index of `store.search`: the query built from quoted words (#12).

What was typed never reaches the query syntax: `search_text.chunks` cuts it at
whitespace, and each piece becomes a term built here with its quotes escaped.

- SQLite (FTS5): each piece is a quoted string followed by `*`: a phrase of the words
  the tokenizer finds in it, the last one as a prefix (`"foo.ba"*` finds `foo.bar`).
  The terms are ANDed, and limited to the owner's rows by the `owner` column (one
  token, the hex of the owner's id) in the same expression, so that FTS5's index
  does that too. Best first: matching titles, then messages, each by bm25 among the
  owner's newest `RANKED` matches: FTS5 walks the matches newest first to find them,
  then scores the rows between the first and the last with an expression without the
  owner (bm25 counts every row of each word in its expression, and the owner's "word"
  is in all of the owner's rows). With more matches than that, the newest first.
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
RANKED = 1_000

# The owner's newest matching messages (rowids above 0), and titles (below 0: their
# rowids go down as they are made, so the newest are the lowest).
_SQLITE_NEWEST = text(
    "SELECT rowid FROM search_index WHERE search_index MATCH :match AND rowid > 0"
    " ORDER BY rowid DESC LIMIT :depth"
)
_SQLITE_NEWEST_TITLES = text(
    "SELECT rowid FROM search_index WHERE search_index MATCH :match AND rowid < 0"
    " ORDER BY rowid LIMIT :depth"
)
# Scores (only: a row's other columns cost a lookup each) of the rows between two
# rowids that have the words, whoever's: bm25 counts the rows of each word of its
# expression, so the owner's column is left out of it (it is a word in every one of
# the owner's rows), and the caller keeps the owner's rows.
_SQLITE_SCORES = text(
    "SELECT rowid AS id, bm25(search_index, 0.0, 0.0, 3.0, 1.0) AS score"
    " FROM search_index WHERE search_index MATCH :match AND rowid BETWEEN :low AND :high"
)
_SQLITE_CONVERSATIONS = text(
    "SELECT rowid AS id, conversation FROM search_index WHERE rowid IN :ids"
).bindparams(bindparam("ids", expanding=True))
_SQLITE_FIRST = text(
    "SELECT conversation, min(rowid) AS id FROM search_index"
    " WHERE search_index MATCH :match AND rowid > 0 GROUP BY conversation"
)
_POSTGRES_LEXEMES = text("SELECT tsvector_to_array(to_tsvector('hxchat_search', :typed))")
# The tsquery is written out at each use (not taken from a CTE) so that the planner
# sees it and estimates how common its words are: it then walks the owner's newest
# messages for a common word, and uses the GIN index for a rare one.
_TSQUERY = "CAST(:tsquery AS tsquery)"
_RANK = f"ts_rank('{{0.1, 0.2, 0.4, 0.3}}', document, {_TSQUERY})"
_POSTGRES_CUSTOM_PLAN = text("SET LOCAL plan_cache_mode = force_custom_plan")
_POSTGRES_FIND = text(
    "SELECT id, conversation_id, score FROM ("
    f" SELECT message_id AS id, conversation_id, {_RANK} AS score"
    " FROM search_messages WHERE message_id IN ("
    " SELECT message_id FROM search_messages"
    f" WHERE owner = :owner AND document @@ {_TSQUERY}"
    " ORDER BY message_id DESC LIMIT :depth)"
    " UNION ALL"
    f" SELECT NULL, conversation_id, {_RANK} FROM search_titles"
    f" WHERE owner = :owner AND document @@ {_TSQUERY}) AS found"
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


def fts5_match(owner: str | None, pieces: Sequence[str]) -> str:
    """The FTS5 expression: the rows whose title or body has every piece (the owner's
    rows only, unless `owner` is None)."""
    terms = " AND ".join(fts5_string(piece) + "*" for piece in pieces)
    words = f"{{title body}} : ({terms})"
    return words if owner is None else f"owner : {_hex(owner)} AND {words}"


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
    owned = {"match": fts5_match(owner, pieces), "depth": RANKED}
    best: list[int] = []
    for newest in (_SQLITE_NEWEST_TITLES, _SQLITE_NEWEST):
        candidates = list(conn.scalars(newest, owned))
        if len(candidates) == RANKED:
            # Words in more than RANKED of the owner's rows tell little apart (and bm25
            # would count every row they are in, whoever's): the newest come first.
            best += candidates
            continue
        if not candidates:
            continue
        bounds = {"low": min(candidates), "high": max(candidates)}
        kept = set(candidates)
        scores = {
            row.id: row.score
            for row in conn.execute(_SQLITE_SCORES, {"match": fts5_match(None, pieces), **bounds})
            if row.id in kept
        }
        best += sorted(scores, key=lambda rowid: (scores[rowid], -rowid))  # bm25: low first
    best = best[:MAX_RESULTS]  # ranked titles first (a title weighs more), then messages
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
    # A prepared statement's generic plan would not know how common the words are.
    conn.execute(_POSTGRES_CUSTOM_PLAN)
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
