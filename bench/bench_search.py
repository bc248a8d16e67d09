"""Searching a big library, and what the index adds to the end of an answer (issue #12).

Per database (a SQLite file, then a fresh PostgreSQL database made and dropped here,
like bench_scale.py): the schema at 0005, then 10,000 conversations of 20 messages
(200,000 messages) for one owner and as many for another, written in bulk (executemany
on SQLite, COPY on PostgreSQL), then the upgrade to the head, whose migration 0009
builds the index for them (its time is printed). The text is made of 20,000 made-up
words drawn with Zipf's law (a few very common, most rare), questions of ~12 words and
answers of ~60, some with accents.

Then, in this process, on the real `SqlStore` (one event loop, as one worker has):

- searches of the big owner, one after another: single words of middling and rare
  frequency, prefixes of 3-4 letters, two words; p50, p95, max per kind and over all
  (the target: p95 under 100 ms). The most common word and a 2-letter prefix are
  timed apart, as the worst cases (they match a large part of the library);
- the end of an answer (`finish`, one transaction) for 200 new turns, with the index
  kept (as shipped) and with `search.add` and `search.add_missing` switched off: the
  difference is what search adds to an answer's end (the answer, and the question it
  answers when the index lacks it).

Nothing is asserted. Run:
`python -m bench.bench_search [--conversations N] [--only sqlite|postgres]`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # type: ignore[import-untyped]
from alembic import command
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from tests.store_helpers import finish_answer

from bench.bench_scale import fresh_database
from bench.machine import describe
from hxchat.store import search
from hxchat.store.engine import make_engine
from hxchat.store.migrate import alembic_config, upgrade
from hxchat.store.records import make_title
from hxchat.store.sql import SqlStore, open_store

OWNER = "bench-owner"
OTHER = "other-owner"
MESSAGES_PER_CONVERSATION = 20
VOCABULARY = 20_000
SEARCHES_PER_KIND = 60
ENDS = 200
SYLLABLES = [
    "ka",
    "ri",
    "to",
    "mo",
    "sa",
    "ne",
    "lu",
    "vi",
    "de",
    "pa",
    "zo",
    "gi",
    "fe",
    "bu",
    "chi",
    "ra",
    "no",
    "me",
    "ta",
    "ko",
]
ACCENTED = ["é", "è", "ü", "ñ", "ø", "å"]

Row = tuple[Any, ...]
T = TypeVar("T")


def make_vocabulary(rng: random.Random) -> list[str]:
    """Distinct made-up words, most common first; one in ten has an accent."""
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if rng.random() < 0.1:
            at = rng.randrange(len(word))
            word = word[:at] + rng.choice(ACCENTED) + word[at + 1 :]
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


class Library:
    """The rows of every conversation, made in memory (ids given here)."""

    def __init__(self, conversations: int, seed: int = 12) -> None:
        self.rng = random.Random(seed)
        self.words = make_vocabulary(self.rng)
        weights = [1 / (rank + 1) for rank in range(VOCABULARY)]
        self._cumulative = list(_accumulate(weights))
        self.conversations: list[Row] = []
        self.messages: list[Row] = []
        now = datetime(2026, 1, 1, tzinfo=UTC)
        message_id = 0
        for owner in (OWNER, OTHER):
            for n in range(conversations):
                cid = uuid.UUID(int=self.rng.getrandbits(128)).hex
                at = now + timedelta(minutes=n)
                parent: int | None = None
                first = ""
                for k in range(MESSAGES_PER_CONVERSATION):
                    message_id += 1
                    user = k % 2 == 0
                    content = self.text(12 if user else 60)
                    first = first or content
                    role = "user" if user else "assistant"
                    generation = None if user else f"g{message_id}"
                    self.messages.append(
                        (
                            message_id,
                            cid,
                            parent,
                            role,
                            content,
                            "complete",
                            "[]",
                            generation,
                            at,
                            at,
                        )
                    )
                    parent = message_id
                self.conversations.append((cid, owner, make_title(first), at, at, parent))

    def text(self, count: int) -> str:
        return " ".join(self.rng.choices(self.words, cum_weights=self._cumulative, k=count))


def _accumulate(values: list[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


CONVERSATION_COLUMNS = ("id", "owner", "title", "created_at", "updated_at", "current_leaf_id")
MESSAGE_COLUMNS = (
    "id",
    "conversation_id",
    "parent_id",
    "role",
    "content",
    "status",
    "sources",
    "generation_id",
    "created_at",
    "updated_at",
)


async def at_0005(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:

            def to_0005(connection: Connection) -> None:
                config = alembic_config(connection)
                if MigrationContext.configure(connection).get_current_heads():
                    command.downgrade(config, "0005")  # bench_scale's database is at the head
                else:
                    command.upgrade(config, "0005")

            await conn.run_sync(to_0005)
    finally:
        await engine.dispose()


def fill_sqlite(path: Path, library: Library) -> None:
    def sql(table: str, columns: tuple[str, ...]) -> str:
        marks = ", ".join("?" for _ in columns)
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"

    def plain(row: Row) -> Row:  # times as SQLite keeps them: text without an offset
        return tuple(
            v.replace(tzinfo=None).isoformat(" ") if isinstance(v, datetime) else v for v in row
        )

    db = sqlite3.connect(path)
    try:
        with db:
            db.executemany(
                sql("conversations", CONVERSATION_COLUMNS), map(plain, library.conversations)
            )
            db.executemany(sql("messages", MESSAGE_COLUMNS), map(plain, library.messages))
    finally:
        db.close()


async def fill_postgres(url: str, library: Library) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.copy_records_to_table(
            "conversations", records=library.conversations, columns=CONVERSATION_COLUMNS
        )
        await conn.copy_records_to_table(
            "messages", records=library.messages, columns=MESSAGE_COLUMNS
        )
        await conn.execute("SELECT setval('messages_id_seq', (SELECT max(id) FROM messages))")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def queries(library: Library) -> dict[str, list[str]]:
    rng = random.Random(7)
    words = library.words
    middling = words[100:1000]  # in ~0.1% to 1% of messages
    rare = words[2000:VOCABULARY]
    return {
        "middling word": [rng.choice(middling) for _ in range(SEARCHES_PER_KIND)],
        "rare word": [rng.choice(rare) for _ in range(SEARCHES_PER_KIND)],
        "prefix (3-4 letters)": [
            rng.choice(words[50:VOCABULARY])[: rng.randint(3, 4)] for _ in range(SEARCHES_PER_KIND)
        ],
        "two words": [
            f"{rng.choice(words[20:500])} {rng.choice(words[20:2000])}"
            for _ in range(SEARCHES_PER_KIND)
        ],
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def line(name: str, times: list[float], extra: str = "") -> str:
    ms = [t * 1000 for t in times]
    return (
        f"  {name:<24} p50 {statistics.median(ms):7.1f} ms   p95 {percentile(ms, 0.95):7.1f} ms"
        f"   max {max(ms):7.1f} ms{extra}"
    )


async def timed(work: Awaitable[T]) -> tuple[float, T]:
    """How long awaiting `work` took (it starts when awaited), and its result."""
    start = time.perf_counter()
    result = await work
    return time.perf_counter() - start, result


async def searches(store: SqlStore, library: Library) -> None:
    every: list[float] = []
    for kind, typed in queries(library).items():
        times: list[float] = []
        counts: list[int] = []
        for q in typed:
            took, hits = await timed(store.search(OWNER, q))
            times.append(took)
            counts.append(len(hits))
        every += times
        print(line(kind, times, f"   (results: median {statistics.median(counts):.0f})"))
    print(line("all of them", every))
    for name, q in (
        ("most common word", library.words[0]),
        ("2-letter prefix", library.words[0][:2]),
    ):
        times = [(await timed(store.search(OWNER, q)))[0] for _ in range(5)]
        print(line(f"worst: {name}", times, f"   ({q!r})"))


async def answer_ends(store: SqlStore, library: Library) -> None:
    conversations = [row[0] for row in library.conversations if row[1] == OWNER]
    rng = random.Random(3)

    async def ends() -> tuple[list[float], list[float]]:
        starts: list[float] = []
        finishes: list[float] = []
        for _ in range(ENDS):
            cid = rng.choice(conversations)
            gid = uuid.uuid4().hex
            took, _ = await timed(store.start_turn(OWNER, cid, library.text(12), gid, "w", 60))
            starts.append(took)
            answer = library.text(60)
            took, _ = await timed(finish_answer(store, gid, answer))
            finishes.append(took)
        return starts, finishes

    starts, finishes = await ends()
    with (
        mock.patch.object(search, "add", lambda conn, ids: None),
        mock.patch.object(search, "add_missing", lambda conn, ids: None),
    ):
        bare_starts, bare_finishes = await ends()
    print(line("end of an answer, index", finishes))
    print(line("end of an answer, none", bare_finishes))
    added = statistics.median(finishes) - statistics.median(bare_finishes)
    print(f"  search adds to an answer's end: {added * 1000:+.2f} ms at the median")
    print(line("turn start, index", starts))
    print(line("turn start, none", bare_starts))


async def measure(
    name: str, url: str, library: Library, fill: Callable[[], Awaitable[None]]
) -> None:
    print(f"\n== {name} ==")
    await at_0005(url)
    took, _ = await timed(fill())
    print(f"  bulk insert of {len(library.messages):,} messages: {took:.1f} s")
    took, _ = await timed(upgrade(url))
    print(f"  upgrade from 0005 (0010 builds the index): {took:.1f} s")
    store = await open_store(url)
    try:
        await searches(store, library)
        await answer_ends(store, library)
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=10_000, help="per owner")
    parser.add_argument("--only", choices=("sqlite", "postgres"), help="one database only")
    args = parser.parse_args()
    for text_line in describe():
        print(text_line)
    started = time.perf_counter()
    library = Library(args.conversations)
    print(
        f"library: {args.conversations:,} conversations and "
        f"{args.conversations * MESSAGES_PER_CONVERSATION:,} messages per owner, 2 owners "
        f"(made in {time.perf_counter() - started:.1f} s)"
    )
    if args.only != "postgres":
        with tempfile.TemporaryDirectory() as workdir:
            path = Path(workdir) / "hxchat.db"

            async def fill_file() -> None:
                await asyncio.to_thread(fill_sqlite, path, library)

            url = f"sqlite+aiosqlite:///{path}"
            asyncio.run(measure("SQLite (FTS5)", url, library, fill_file))
    if args.only == "sqlite":
        return
    with fresh_database() as url:
        asyncio.run(
            measure("PostgreSQL (tsvector, GIN)", url, library, lambda: fill_postgres(url, library))
        )


if __name__ == "__main__":
    main()
