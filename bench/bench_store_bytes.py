"""Bytes written to the store per answer, over the answer's final size (issue #13).

The real runner, lease supervisor and store run in this process (`create_app` and its
lifespan: the echo model, the in-memory event log), on a SQLite file and on a fresh
PostgreSQL database (made and dropped here, like bench_scale.py). One answer at a
time, 500, 2,000 and 8,000 words of mixed Markdown (`bench_render.mixed`) echoed at
30 ms a word: the pace at which checkpoints (once a second) see about 33 new words.

What is counted: every value bound to a statement that writes (INSERT, UPDATE,
DELETE) from the POST to the answer's end, as the driver receives it (a SQLAlchemy
`before_cursor_execute` listener): text as its UTF-8 bytes, any other value as 8
bytes (SQLite gets its times as 26-character text, PostgreSQL as binary). The user's
message itself is left out (it is not the answer's). The columns split the bytes by
statement: the turn (the placeholder, the lock), the lease renewals, the checkpoints'
pieces of text, the end (the final text, freeing the conversation, deleting the
pieces), the rest (the worker's sweeps every 3 s, whatever it runs: not the answer's
own cost, so `ratio` leaves them out and `other` shows them). With `--wal`, PostgreSQL's WAL growth
over the same time is printed too: it counts every client of the server.

Nothing is asserted. Run: `python -m bench.bench_store_bytes [--quick] [--wal]`
(`--quick`: the 8,000 words at 5 ms a word; the others stay at 30 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import create_async_engine

from bench.bench_render import mixed
from bench.bench_scale import fresh_database
from bench.machine import describe
from hxchat.app import create_app
from hxchat.config import load_settings

TARGET = 3.0
OWNER = "bench-owner"
KINDS = ("turn", "leases", "pieces", "end", "other")
# PostgreSQL's `$1::VARCHAR` and SQLite's `?` alike.
PLACEHOLDER = re.compile(r"\$\d+(?:::[a-z]+(?: with time zone)?)?")
# The first entry whose marks are all in a (lower-case) statement names its kind.
KIND_MARKS: list[tuple[tuple[str, ...], str]] = [
    (("delete from answer_pieces",), "end"),
    (("answer_pieces",), "pieces"),
    (("insert into messages",), "turn"),
    (("set title",), "turn"),
    (("active_generation_id is null",), "turn"),  # the conversation's lock
    (("update messages set status",), "other"),  # a sweep (it returns final_event_id)
    (("update messages set", "final_event_id"), "end"),  # the answer stored whole
    (("update conversations", "active_generation_id = ?"), "end"),  # the lock freed
    (("update messages set", "lease_expires_at", "worker_id = ?"), "leases"),
]


def kind_of(statement: str) -> str | None:
    """Which part of an answer's life a statement belongs to; None: it writes nothing."""
    sql = PLACEHOLDER.sub("?", " ".join(statement.split()).lower())
    verb = sql.split(" ", 1)[0]
    if verb not in {"insert", "update", "delete"}:
        return None
    for marks, kind in KIND_MARKS:
        if all(mark in sql for mark in marks):
            return kind
    return "other"


def size(value: Any) -> int:
    """The bytes of one bound value, or of all the values of a statement."""
    if isinstance(value, dict):
        return sum(size(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(size(v) for v in value)
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    return 0 if value is None else 8


class Written:
    """Bytes bound to writing statements, by kind, in every engine of this process."""

    def __init__(self) -> None:
        self.bytes: Counter[str] = Counter()

    def __call__(self, conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        kind = kind_of(statement)
        if kind is not None:
            self.bytes[kind] += size(parameters)

    @contextlib.contextmanager
    def listening(self) -> Iterator[None]:
        event.listen(Engine, "before_cursor_execute", self)
        try:
            yield
        finally:
            event.remove(Engine, "before_cursor_execute", self)


async def wal_position(url: str) -> int | None:
    """PostgreSQL's WAL insert position in bytes (None on SQLite)."""
    if not url.startswith("postgresql"):
        return None
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            lsn = await conn.scalar(text("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"))
    finally:
        await engine.dispose()
    return int(lsn)


async def measure(url: str, lengths: list[tuple[int, int]], wal: bool) -> list[str]:
    """One answer at a time for every (words, ms a word); a line of figures each."""
    lines = []
    for words, delay_ms in lengths:
        prompt = mixed(words)
        settings = load_settings(
            database_url=url,
            echo_delay_ms=delay_ms,
            max_message_chars=len(prompt) + 1,
            max_answer_chars=max(len(prompt) + 1, 1_000),
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            store, runner = app.state.store, app.state.runner
            conversation_id = await store.create_conversation(OWNER)
            written = Written()
            before = await wal_position(url) if wal else None
            began = time.monotonic()
            with written.listening():
                started = await runner.send(OWNER, conversation_id, prompt)
                while runner.running:
                    await asyncio.sleep(0.05)
            took = time.monotonic() - began
            after = await wal_position(url) if wal else None
            generation = await store.get_generation(started.generation_id, OWNER)
        final = len(generation.content.encode())
        written.bytes["turn"] -= len(prompt.encode())  # the user's message
        total = sum(written.bytes.values()) - written.bytes["other"]
        parts = "  ".join(f"{written.bytes[kind] / final:6.2f}" for kind in KINDS)
        wal_column = "" if before is None or after is None else f"  {(after - before) / 1024:8.0f}"
        lines.append(
            f"{words:6d}  {delay_ms:3d} ms  {took:5.0f} s  {generation.status.value:9s}"
            f"{final / 1024:8.1f}  {total / 1024:8.1f}  {total / final:6.2f}  {parts}{wal_column}"
        )
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", default="500,2000,8000", help="answer lengths")
    parser.add_argument("--delay-ms", type=int, default=30, help="the echo's pace")
    parser.add_argument("--quick", action="store_true", help="answers over 2,000 words at 5 ms")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--wal", action="store_true", help="PostgreSQL's WAL growth too")
    args = parser.parse_args()
    lengths = [
        (n, 5 if args.quick and n > 2000 else args.delay_ms)
        for n in (int(w) for w in args.words.split(","))
    ]
    for line in describe():
        print(line)
    print(
        "bytes bound to writing statements per answer (the user's message left out), "
        f"over the final text's bytes; target: at most {TARGET:g}, flat in length;\n"
        "written KB and ratio leave out `other` (the worker's sweeps every 3 s)"
    )
    head = (
        " words     pace   took  status    final KB  written KB  ratio"
        "    turn  leases  pieces     end   other"
    )
    for database in args.databases.split(","):
        with contextlib.ExitStack() as stack:
            if database == "sqlite":
                tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="hxchat-bench-"))
                url = f"sqlite+aiosqlite:///{Path(tmp) / 'hxchat.db'}"
            else:
                url = stack.enter_context(fresh_database())
            print(f"\n== {database} ==")
            print(head + ("   WAL KB" if args.wal and database != "sqlite" else ""), flush=True)
            asyncio.run(measure(url, lengths, args.wal))


if __name__ == "__main__":
    main()
