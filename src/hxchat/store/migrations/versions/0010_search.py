"""Full-text search of the conversation library (#12).

SQLite: one FTS5 table, `search_index` (unicode61 tokenizer with diacritics folded,
prefix indexes for two and three characters). Its columns are `owner` and
`conversation` (each one token: the hex of the owner's id and of the conversation's,
so that a search is limited to its owner's rows by the index itself, and a
conversation's rows are found by it), `title` and `body`. A message's row has the
message's id as its rowid and its text as `body`; a conversation's title has a row of
its own with a negative rowid.

PostgreSQL: `search_messages` and `search_titles`, each with a `tsvector` under a GIN
index, made with the text search configuration `hxchat_search`: `simple` (no
language's stemming or stop words, so it works for any language) after `unaccent`
when the extension can be created; without it the configuration is `simple` alone and
accents are not folded (a warning says so). With the extension `btree_gin` the GIN
indexes hold the owner too, so that a search fetches only its owner's matching rows;
without it they hold the document alone (a warning says so; searches are slower).

What is indexed: the text of every message on the path each conversation shows (the
versions it does not show are not searched), once it is written (an answer when it
ends), and every conversation's title. Titles are kept current by triggers, whoever
writes them; messages by the store (`hxchat.store.search`), which knows the path.
The upgrade builds the index for the existing rows; the downgrade drops it.

Written out as SQL: a migration must not change with the code.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 00:00:00
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger(__name__)

# The messages on each conversation's path: its leaf and the leaf's ancestors, written
# (not an empty placeholder) and not being written.
_ON_PATHS = (
    "WITH RECURSIVE path(id) AS ("
    " SELECT current_leaf_id FROM conversations WHERE current_leaf_id IS NOT NULL"
    " UNION ALL"
    " SELECT m.parent_id FROM messages AS m JOIN path ON m.id = path.id"
    " WHERE m.parent_id IS NOT NULL)"
)
_SHOWN = "m.id IN (SELECT id FROM path) AND m.content <> '' AND m.status <> 'streaming'"

_SQLITE = [
    "CREATE VIRTUAL TABLE search_index USING fts5("
    " owner, conversation, title, body,"
    " tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')",
    # A title row's rowid: below every other one (message rows are positive).
    "CREATE TRIGGER search_title_added AFTER INSERT ON conversations BEGIN"
    " INSERT INTO search_index (rowid, owner, conversation, title, body) VALUES ("
    " min(coalesce((SELECT rowid FROM search_index ORDER BY rowid LIMIT 1), 0), 0) - 1,"
    " hex(new.owner), hex(new.id), new.title, '');"
    " END",
    "CREATE TRIGGER search_title_changed AFTER UPDATE OF title ON conversations BEGIN"
    " DELETE FROM search_index WHERE search_index MATCH 'conversation : ' || hex(old.id)"
    " AND rowid < 0;"
    " INSERT INTO search_index (rowid, owner, conversation, title, body) VALUES ("
    " min(coalesce((SELECT rowid FROM search_index ORDER BY rowid LIMIT 1), 0), 0) - 1,"
    " hex(new.owner), hex(new.id), new.title, '');"
    " END",
    "CREATE TRIGGER search_title_deleted AFTER DELETE ON conversations BEGIN"
    " DELETE FROM search_index WHERE search_index MATCH 'conversation : ' || hex(old.id)"
    " AND rowid < 0;"
    " END",
    # Also when the cascade of a conversation's delete removes its messages.
    "CREATE TRIGGER search_message_deleted AFTER DELETE ON messages BEGIN"
    " DELETE FROM search_index WHERE rowid = old.id;"
    " END",
    "INSERT INTO search_index (rowid, owner, conversation, title, body)"
    " SELECT -row_number() OVER (ORDER BY id), hex(owner), hex(id), title, ''"
    " FROM conversations",
    f"{_ON_PATHS} INSERT INTO search_index (rowid, owner, conversation, title, body)"
    " SELECT m.id, hex(c.owner), hex(c.id), '', m.content"
    " FROM messages AS m JOIN conversations AS c ON c.id = m.conversation_id"
    f" WHERE {_SHOWN}",
]

_POSTGRES_TABLES = [
    "CREATE TABLE search_messages ("
    " message_id INTEGER PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,"
    " conversation_id VARCHAR(32) NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,"
    " owner VARCHAR(255) NOT NULL,"
    " document TSVECTOR NOT NULL)",
    "CREATE INDEX ix_search_messages_document ON search_messages USING GIN ({indexed})",
    "CREATE INDEX ix_search_messages_conversation ON search_messages (conversation_id)",
    # The owner's messages newest first: the newest matches of a common word.
    "CREATE INDEX ix_search_messages_owner ON search_messages (owner, message_id)",
    "CREATE TABLE search_titles ("
    " conversation_id VARCHAR(32) PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,"
    " owner VARCHAR(255) NOT NULL,"
    " document TSVECTOR NOT NULL)",
    "CREATE INDEX ix_search_titles_document ON search_titles USING GIN ({indexed})",
    "CREATE FUNCTION search_title_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN"
    " INSERT INTO search_titles (conversation_id, owner, document)"
    " VALUES (NEW.id, NEW.owner, setweight(to_tsvector('hxchat_search', NEW.title), 'A'))"
    " ON CONFLICT (conversation_id) DO UPDATE SET document = EXCLUDED.document;"
    " RETURN NULL;"
    " END $$",
    "CREATE TRIGGER search_title_changed AFTER INSERT OR UPDATE OF title ON conversations"
    " FOR EACH ROW EXECUTE FUNCTION search_title_changed()",
    "INSERT INTO search_titles (conversation_id, owner, document)"
    " SELECT id, owner, setweight(to_tsvector('hxchat_search', title), 'A') FROM conversations",
    f"{_ON_PATHS} INSERT INTO search_messages (message_id, conversation_id, owner, document)"
    " SELECT m.id, c.id, c.owner, to_tsvector('hxchat_search', m.content)"
    " FROM messages AS m JOIN conversations AS c ON c.id = m.conversation_id"
    f" WHERE {_SHOWN}",
    # How common each word is, for the planner (before autovacuum would get to it).
    "ANALYZE search_messages",
    "ANALYZE search_titles",
]

# The word types of PostgreSQL's default parser that hold letters (not numbers, URLs…).
_WORDS = "asciiword, asciihword, hword_asciipart, word, hword, hword_part, numword, numhword"


def _extension(name: str, without: str) -> bool:
    """Create the extension if it can be (in a savepoint, so that a refusal leaves the
    migration going on); otherwise log what is done `without` it."""
    bind = op.get_bind()
    savepoint = bind.begin_nested()
    try:
        bind.exec_driver_sql(f"CREATE EXTENSION IF NOT EXISTS {name}")
    except Exception as exc:  # not installed, or this role may not create it
        savepoint.rollback()
        logger.warning(
            "search: the PostgreSQL extension %s is not available (%s); %s",
            name,
            type(exc).__name__,
            without,
        )
        return False
    savepoint.commit()
    return True


def _postgres_configuration() -> str:
    """`hxchat_search`: `simple` after `unaccent` if it can be had. Returns the GIN
    indexes' columns: the owner's too with `btree_gin` (a search then fetches only the
    owner's matching rows), else the document alone."""
    op.execute("CREATE TEXT SEARCH CONFIGURATION hxchat_search (COPY = simple)")
    if _extension("unaccent", "searches will not fold accents (cafe will not find café)"):
        op.execute(
            f"ALTER TEXT SEARCH CONFIGURATION hxchat_search ALTER MAPPING FOR {_WORDS}"
            " WITH unaccent, simple"
        )
    if _extension("btree_gin", "searches fetch every owner's matching rows, then filter"):
        return "owner, document"
    return "document"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        indexed = _postgres_configuration()
        statements = [statement.replace("{indexed}", indexed) for statement in _POSTGRES_TABLES]
    else:
        statements = _SQLITE
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS search_title_changed ON conversations")
        op.execute("DROP FUNCTION IF EXISTS search_title_changed()")
        op.execute("DROP TABLE IF EXISTS search_titles")
        op.execute("DROP TABLE IF EXISTS search_messages")
        op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS hxchat_search")
        return  # the extensions stay: other objects of the database may use them
    for trigger in (
        "search_title_added",
        "search_title_changed",
        "search_title_deleted",
        "search_message_deleted",
    ):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS search_index")
