"""Export of everything an owner has, streamed (#12): time and the server's memory.

A real `hxchat serve` (one worker) on a fresh SQLite file, or with `--postgres` on a
fresh PostgreSQL database (made and dropped here, like bench_scale.py). For each size
(`--sizes 500,2000` conversations of `--messages 20` messages, `--chars 400`
characters each) a new owner (a new session cookie) gets that many conversations,
written straight into the database by the import's own writer (`library.writing`,
its time is printed as "fill"). Then `GET /api/export` is read to its end,
uncompressed: time to the first byte, the whole time, MB/s, and the server's peak
RSS growth (the kernel's high-water mark, `VmHWM`, reset through
`/proc/<pid>/clear_refs` before each export, against `VmRSS` before it). A streamed
export's growth stays about the same however many conversations there are: one batch
of 100 conversations in memory at a time. Last, the largest export is imported back
(`POST /api/import`, for another owner) with its time and growth: the import parses
its file whole, so its memory grows with the file (bounded by HXCHAT_MAX_IMPORT_MB).

Nothing is asserted. Run: `python -m bench.bench_export [--sizes 500,2000] [--postgres]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from tests.servers import Server, serving

from bench.bench_scale import fresh_database
from bench.machine import describe
from hxchat.domain import Role
from hxchat.library import writing
from hxchat.library.imported import NewConversation, NewMessage
from hxchat.store.sql import open_store

BATCH = 200  # conversations per fill transaction


def memory_kib(pid: int, field: str) -> int:
    """A `/proc/<pid>/status` figure (VmRSS, VmHWM) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak(pid: int) -> None:
    """Start the process's RSS high-water mark again from its current RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def conversation(number: int, messages: int, chars: int) -> NewConversation:
    text = ("lorem ipsum dolor sit amet " * (chars // 27 + 1))[:chars]
    made = NewConversation(title=f"Conversation {number}")
    for index in range(messages):
        role = Role.USER if index % 2 == 0 else Role.ASSISTANT
        parent = None if index == 0 else index - 1
        made.messages.append(NewMessage(role=role, content=f"{index} {text}", parent=parent))
    made.leaf = messages - 1
    return made


async def fill(database_url: str, owner: str, count: int, messages: int, chars: int) -> float:
    store = await open_store(database_url)
    started = time.perf_counter()
    try:
        for first in range(0, count, BATCH):
            batch = [
                conversation(n, messages, chars) for n in range(first, min(count, first + BATCH))
            ]
            await store.run(True, writing.write, owner, batch)
    finally:
        await store.close()
    return time.perf_counter() - started


@contextlib.contextmanager
def session(server: Server) -> Iterator[tuple[httpx.Client, str]]:
    """A client with a session cookie of its own, and the owner id the cookie carries."""
    with httpx.Client(base_url=server.url, timeout=600) as client:
        client.get("/")
        cookie = client.cookies["hxchat_session"]
        yield client, cookie.rsplit(".", 1)[0]


def export(client: httpx.Client, pid: int) -> tuple[bytes, float, float, int]:
    """The export's bytes, seconds to the first byte and in all, peak RSS growth (KiB)."""
    reset_peak(pid)
    before = memory_kib(pid, "VmRSS")
    chunks: list[bytes] = []
    started = time.perf_counter()
    first = 0.0
    headers = {"Accept-Encoding": "identity"}
    with client.stream("GET", "/api/export", headers=headers) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            if not chunks:
                first = time.perf_counter() - started
            chunks.append(chunk)
    total = time.perf_counter() - started
    return b"".join(chunks), first, total, memory_kib(pid, "VmHWM") - before


def run(database_url: str, workdir: Path, sizes: list[int], messages: int, chars: int) -> None:
    env = {"HXCHAT_DATABASE_URL": database_url, "HXCHAT_MAX_IMPORT_MB": "256"}
    with serving(workdir, env) as server:
        pid = server.process.pid
        print(f"server RSS at rest: {memory_kib(pid, 'VmRSS') / 1024:.0f} MiB")
        print(
            f"{'conversations':>13}{'messages':>10}{'fill s':>8}{'MB':>8}{'1st byte ms':>12}"
            f"{'export s':>9}{'MB/s':>7}{'peak RSS growth MiB':>21}"
        )
        largest = b""
        for size in sizes:
            with session(server) as (client, owner):
                filled = asyncio.run(fill(database_url, owner, size, messages, chars))
                body, first, total, growth = export(client, pid)
            megabytes = len(body) / 1e6
            print(
                f"{size:>13,}{size * messages:>10,}{filled:>8.1f}{megabytes:>8.1f}"
                f"{first * 1000:>12.0f}{total:>9.2f}{megabytes / total:>7.1f}"
                f"{growth / 1024:>21.1f}"
            )
            largest = body
        with session(server) as (client, _):
            reset_peak(pid)
            before = memory_kib(pid, "VmRSS")
            started = time.perf_counter()
            response = client.post(
                "/api/import", content=largest, headers={"Content-Type": "application/json"}
            )
            took = time.perf_counter() - started
            growth = memory_kib(pid, "VmHWM") - before
        print(
            f"import of the last export ({len(largest) / 1e6:.1f} MB): {response.status_code} "
            f"{response.text.strip()} in {took:.1f} s, peak RSS growth {growth / 1024:.0f} MiB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="500,2000", help="conversations per owner, comma-separated"
    )
    parser.add_argument("--messages", type=int, default=20, help="messages per conversation")
    parser.add_argument("--chars", type=int, default=400, help="characters per message")
    parser.add_argument("--postgres", action="store_true", help="also on a fresh PostgreSQL")
    args = parser.parse_args()
    sizes = [int(part) for part in args.sizes.split(",")]
    for line in describe():
        print(line)
    with tempfile.TemporaryDirectory(prefix="hxchat-bench-export-") as tmp:
        workdir = Path(tmp)
        print(f"\n== SQLite, {args.messages} messages of {args.chars} characters each ==")
        run(
            f"sqlite+aiosqlite:///{workdir / 'bench.db'}", workdir, sizes, args.messages, args.chars
        )
        if args.postgres:
            print(f"\n== PostgreSQL, {args.messages} messages of {args.chars} characters each ==")
            with fresh_database() as url:
                run(url, workdir, sizes, args.messages, args.chars)


if __name__ == "__main__":
    main()
