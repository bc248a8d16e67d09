"""The concurrency ramp: N conversations streaming at once, and how late their words are.

Each of N clients posts a 300-word message to the echo model (one conversation and one
session cookie each, created beforehand and not timed), then reads its answer on a
second connection, as a browser's EventSource does. Clients start evenly spread over
`spread` seconds (2 by default, a third of an answer): all N are streaming together
for the last two thirds, and the server also pays for N new answers in those seconds.

Lateness. The echo model releases word i at `start + i * delay` (a fixed schedule, not
a sleep after each word). The client cannot see `start`, so for each stream it takes
the origin that makes its most punctual word exactly on time:
`origin = min_i(arrival_i - i * delay)`; word i is then `arrival_i - i * delay - origin`
late (>= 0). A server that falls behind shows as growing lateness; a stream that
started late is reported separately as its first-word delay (POST sent to first word
received). "steady" is the lateness of the words due after the last stream started.
Words are recognised by their text (`w000` ... `w299`) in every event of the browser
stream and in each `delta` of the JSON stream: a word has arrived when an event shows
it or a later word, so coalesced frames (up to 50 ms by design), snapshots and
re-rendered blocks all count right, whatever the frames' markup.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers import Server, start_server

from bench.machine import busy_seconds, pin_tree, tree_cpu_seconds, tree_cpu_split
from bench.sse_client import Connection, SseEvent

HOST = "127.0.0.1"
WORD = re.compile(rb"w(\d+)")
TARGET_P99 = 0.100
STEPS = (25, 50, 100, 150, 200, 250, 350, 500, 700, 1000)
QUICK_STEPS = (50, 100, 200, 350, 700)  # coarser: fewer steps to the first miss
SETUP_PARALLEL = 32
SPREAD = 2.0  # seconds over which the N clients start
GRACE = 30.0  # seconds a stream may run past its schedule before it counts as failed
FINAL = {"json": ("done", "error"), "browser": ("end",)}


def prompt(words: int) -> str:
    """`w000 w001 ...`: words the client can recognise in any frame."""
    width = len(str(words - 1))
    return " ".join(f"w{i:0{width}d}" for i in range(words))


def start_pinned(workdir: Path, env: dict[str, str], cpus: set[int], *args: str) -> Server:
    """`hxchat serve` pinned to `cpus` (like `taskset -c`), ready to answer."""
    server = start_server(workdir, env, *args)
    try:
        os.sched_setaffinity(server.process.pid, cpus)  # before it starts any thread
        server.wait_ready(timeout=60)
        pin_tree(server.process.pid, cpus)  # workers and threads, to be sure
    except BaseException:
        server.stop()
        raise
    return server


async def wait_quiet(server_pid: int, limit: float = 0.25, patience: float = 60.0) -> float:
    """Wait until processes other than the server and this client use less than
    `limit` of a core over one second (the machine may be shared), at most `patience`
    seconds; returns the last reading so the caller can report a noisy machine."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + patience
    while True:
        busy0, own0, server0 = busy_seconds(), time.process_time(), tree_cpu_seconds(server_pid)
        await asyncio.sleep(1.0)
        own = time.process_time() - own0 + tree_cpu_seconds(server_pid) - server0
        other = max(0.0, busy_seconds() - busy0 - own)
        if other < limit or loop.time() > give_up:
            return other


@dataclass
class StreamRecord:
    """What one client saw of one answer."""

    posted_at: float = 0.0
    generation_id: str = ""
    arrivals: list[float] = field(default_factory=list)
    error: str | None = None


@dataclass
class Step:
    """The figures of one ramp step."""

    kind: str
    n: int
    lateness: list[float]  # sorted, seconds
    steady: list[float]  # sorted lateness of the words due after every stream started
    first_word: list[float]  # sorted, seconds
    errors: int
    error_sample: str
    wall: float
    server_cpu: float
    server_sys: float  # the kernel's part of server_cpu (socket I/O, epoll, scheduling)
    client_cpu: float
    busy: float  # whole machine
    services_cpu: float  # Redis + PostgreSQL, when measured
    words: int
    generation_ids: list[str]

    def p(self, q: float, values: list[float] | None = None) -> float:
        """The q-quantile of `values` (default: all words' lateness); NaN when empty."""
        data = self.lateness if values is None else values
        if not data:
            return math.nan
        return data[min(len(data) - 1, int(q * len(data)))]

    @property
    def ok(self) -> bool:
        """The target held: p99 lateness under 100 ms and no errors."""
        return self.errors == 0 and self.p(0.99) < TARGET_P99


# Headers that sign a client in: one set for all (e.g. one user's `Authorization:
# Bearer`), or one set per client, taken in turn (e.g. a token each).
Auth = dict[str, str] | Sequence[dict[str, str]]


async def create_conversations(
    port: int, n: int, auth: Auth | None = None
) -> list[tuple[str, dict[str, str]]]:
    """n conversations, each with its own session cookie (or with the headers `auth`):
    (id, the headers that reach it)."""
    made: list[tuple[str, dict[str, str]]] = []
    each = [auth] if isinstance(auth, dict) else list(auth or [])

    async def worker(count: int) -> None:
        conn = await Connection.open(HOST, port)
        try:
            for _ in range(count):
                headers = each[len(made) % len(each)] if each else None
                r = await conn.request("POST", "/api/conversations", headers)
                cookie = r.cookie()
                if r.status != 201 or (cookie is None and headers is None):
                    raise RuntimeError(f"POST /api/conversations answered {r.status}")
                made.append((json.loads(r.body)["id"], headers or {"Cookie": str(cookie)}))
        finally:
            conn.close()

    parallel = min(SETUP_PARALLEL, n)
    await asyncio.gather(*(worker(n // parallel + (i < n % parallel)) for i in range(parallel)))
    return made


async def one_stream(
    port: int,
    kind: str,
    conversation: tuple[str, dict[str, str]],
    text: str,
    start_at: float,
    delay: float,
) -> StreamRecord:
    """Post `text` at `start_at` (loop time) and read its answer on the `kind` stream."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, start_at - loop.time()))
    record = StreamRecord()
    words = text.count(" ") + 1
    seen = -1
    finished: list[bool] = []

    def on_event(event: SseEvent) -> bool:
        nonlocal seen
        final = event.event in FINAL[kind]
        if kind == "browser" or event.event == "delta":  # every browser event may show text
            found = WORD.findall(event.data)
            if found:
                top = max(int(w) for w in found)
                if top > seen:
                    record.arrivals.extend([event.at] * (top - seen))
                    seen = top
        failed = event.event == "error" or (
            event.event == "end" and b'data-status="complete"' not in event.data
        )
        if failed:
            record.error = f"the answer ended badly: {event.data[:120]!r}"
        if final:
            finished.append(True)
        return final

    conversation_id, headers = conversation
    conn: Connection | None = None
    try:
        # The POST and the stream use two connections, as a browser's EventSource
        # does; with several workers they may well land on different ones.
        conn = await Connection.open(HOST, port)
        body = json.dumps({"content": text}).encode()
        record.posted_at = time.perf_counter()
        posted = await conn.request(
            "POST",
            f"/api/conversations/{conversation_id}/messages",
            {**headers, "Content-Type": "application/json"},
            body,
        )
        conn.close()
        if posted.status != 202:
            record.error = f"POST message answered {posted.status}: {posted.body[:120]!r}"
            return record
        gid = record.generation_id = json.loads(posted.body)["generation_id"]
        path = f"/api/generations/{gid}/events" if kind == "json" else f"/generations/{gid}/stream"
        conn = await Connection.open(HOST, port)
        budget = words * delay + GRACE
        head = await asyncio.wait_for(conn.stream(path, on_event, headers), budget)
        if head.status != 200:
            record.error = f"GET stream answered {head.status}"
        elif not finished:
            record.error = "the stream ended without a final event"
        elif seen != words - 1 and record.error is None:
            record.error = f"only {seen + 1} of {words} words arrived"
    except TimeoutError:
        record.error = "timed out"
    except (OSError, ValueError, RuntimeError) as exc:
        record.error = f"{type(exc).__name__}: {exc}"
    finally:
        if conn is not None:
            conn.close()
    return record


def lateness(
    records: list[StreamRecord], delay: float
) -> tuple[list[float], list[float], list[float]]:
    """Sorted lateness of all words, of the steady words, and first-word delays, over
    the streams that completed."""
    late: list[float] = []
    steady: list[float] = []
    first: list[float] = []
    all_started = max((r.posted_at for r in records), default=0.0)
    for r in records:
        if r.error is not None or not r.arrivals:
            continue
        due = [a - i * delay for i, a in enumerate(r.arrivals)]
        origin = min(due)
        for i, d in enumerate(due):
            late.append(d - origin)
            if origin + i * delay >= all_started:
                steady.append(d - origin)
        first.append(r.arrivals[0] - r.posted_at)
    return sorted(late), sorted(steady), sorted(first)


async def run_step(
    port: int,
    server_pid: int,
    kind: str,
    n: int,
    *,
    words: int = 300,
    delay: float = 0.02,
    spread: float = SPREAD,
    services_cpu: Callable[[], float] | None = None,
    patience: float = 30.0,
    auth: Auth | None = None,
    prepare: Callable[[list[str]], object] | None = None,
) -> Step:
    """N streams at once; CPU and lateness of the measured phase (setup excluded, and
    `prepare`, given the new conversations' ids, with it: e.g. their history)."""
    conversations = await create_conversations(port, n, auth)
    if prepare is not None:
        await asyncio.to_thread(prepare, [cid for cid, _ in conversations])
    text = prompt(words)
    loop = asyncio.get_running_loop()
    await wait_quiet(server_pid, patience=patience)  # also lets the setup's writes settle
    (user0, sys0), client0, busy0 = tree_cpu_split(server_pid), time.process_time(), busy_seconds()
    svc0 = services_cpu() if services_cpu else 0.0
    wall0 = time.perf_counter()
    begin = loop.time() + 0.1
    records = await asyncio.gather(
        *(
            one_stream(port, kind, c, text, begin + i * spread / n, delay)
            for i, c in enumerate(conversations)
        )
    )
    wall = time.perf_counter() - wall0
    user1, sys1 = tree_cpu_split(server_pid)
    client_cpu = time.process_time() - client0
    busy = busy_seconds() - busy0
    svc = (services_cpu() - svc0) if services_cpu else 0.0
    late, steady, first = lateness(records, delay)
    failed = [r.error for r in records if r.error is not None]
    return Step(
        kind=kind,
        n=n,
        lateness=late,
        steady=steady,
        first_word=first,
        errors=len(failed),
        error_sample=failed[0] if failed else "",
        wall=wall,
        server_cpu=user1 - user0 + sys1 - sys0,
        server_sys=sys1 - sys0,
        client_cpu=client_cpu,
        busy=busy,
        services_cpu=svc,
        words=sum(len(r.arrivals) for r in records),
        generation_ids=[r.generation_id for r in records if r.generation_id],
    )


HEADER = (
    f"{'stream':<8}{'N':>6}{'p50 ms':>8}{'p99 ms':>8}{'steady':>8}{'max ms':>8}"
    f"{'1st word p50/p99 ms':>21}"
    f"{'errors':>8}{'server CPU':>11}{'(sys)':>6}{'us/word':>9}{'client CPU':>11}{'other CPU':>10}"
    "  verdict"
)


def row(step: Step) -> str:
    """One printed line per step; CPU figures are % of one core over the measured wall time."""
    ms = 1000
    first = f"{step.p(0.5, step.first_word) * ms:.0f}/{step.p(0.99, step.first_word) * ms:.0f}"
    per_word = step.server_cpu / step.words * 1e6 if step.words else math.nan
    other = step.busy - step.server_cpu - step.client_cpu - step.services_cpu
    verdict = "ok" if step.ok else "MISSED"
    if step.errors:
        verdict += f" ({step.errors} errors, e.g. {step.error_sample})"
    if step.client_cpu / step.wall > 0.8:
        verdict += " [client near saturation]"
    return (
        f"{step.kind:<8}{step.n:>6}{step.p(0.5) * ms:>8.1f}{step.p(0.99) * ms:>8.1f}"
        f"{step.p(0.99, step.steady) * ms:>8.1f}{step.p(1.0) * ms:>8.1f}{first:>21}{step.errors:>8}"
        f"{step.server_cpu / step.wall:>10.0%} {step.server_sys / step.wall:>5.0%}"
        f"{per_word:>9.0f}"
        f"{step.client_cpu / step.wall:>10.0%} {max(0.0, other) / step.wall:>9.0%}  {verdict}"
        + (f"  [Redis+PG {step.services_cpu / step.wall:.0%}]" if step.services_cpu else "")
    )


async def ramp(
    port: int,
    server_pid: int,
    kind: str,
    steps: tuple[int, ...] = STEPS,
    *,
    deadline: float,
    services_cpu: Callable[[], float] | None = None,
    words: int = 300,
    delay: float = 0.02,
    auth: Auth | None = None,
    prepare: Callable[[list[str]], object] | None = None,
) -> list[Step]:
    """Steps in order until one misses the target, or the time budget runs out."""
    done: list[Step] = []
    for n in steps:
        if time.monotonic() + 15 > deadline:
            print(f"{kind:<8}{n:>6}  skipped: the time budget is spent")
            break
        patience = min(30.0, deadline - time.monotonic() - 15)
        step = await run_step(
            port,
            server_pid,
            kind,
            n,
            words=words,
            delay=delay,
            services_cpu=services_cpu,
            patience=patience,
            auth=auth,
            prepare=prepare,
        )
        done.append(step)
        print(row(step), flush=True)
        if not step.ok:
            break
        await asyncio.sleep(2)  # finished generations are stored; let the server idle
    return done


def cpu_per_1k_words(steps: list[Step]) -> float:
    """Server CPU milliseconds per 1,000 streamed words over `steps` (NaN if none)."""
    words = sum(s.words for s in steps)
    return sum(s.server_cpu for s in steps) / words * 1e6 if words else math.nan


def largest_ok(steps: list[Step]) -> int:
    """The largest N of the ramp that held the target (0 if none)."""
    return max((s.n for s in steps if s.ok), default=0)


def verdict(steps: list[Step], tried: tuple[int, ...]) -> str:
    """`largest_ok`, with a word on why the ramp stopped there."""
    n = largest_ok(steps)
    if steps and not steps[-1].ok:
        return f"{n}"
    if len(steps) < len(tried):
        return f"at least {n} (the time budget ran out before a step missed)"
    return f"at least {n} (the largest step tried)"
