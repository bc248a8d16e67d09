"""What streaming an answer costs a real `hxchat serve`, and how many streams it holds.

Issue 3's two yardsticks, measured end to end over loopback against real server
processes on a temporary SQLite database, with the load generator (this process) and
the server pinned to different cores:

a. One answer at a time (echo model, `HXCHAT_ECHO_DELAY_MS`, 30 ms by default, 5 ms
   with --quick): 500, 2,000 and 8,000 words of mixed Markdown and 2,000 words that
   are one fenced code block, read on the browser stream the page uses, compressed
   as a browser asks for it (`Accept-Encoding: gzip`; `--encoding identity` for none).
   Printed: bytes on that stream over the final HTML's size (SSE data bytes, raw bytes
   on the wire uncompressed, and compressed), server CPU seconds per 1,000 words, time
   to first byte, to first word.
b. The concurrency ramp (bench/ramp.py): N conversations each streaming 300 words at
   20 ms a word, on the JSON event stream and on the browser stream; p50/p99 word
   lateness and the largest N that keeps p99 under 100 ms without errors. With
   `--delay-ms 2` (a model at 500 tokens a second) the answers keep their 6 s: 3,000
   words each, so the same N streams overlap as long.

Nothing is asserted; everything is bounded in count and time. See bench/README.md.
Run: `python -m bench.bench_stream --quick` (or `make bench` for the full run).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import html
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import add_account, run_hxchat

from bench.bench_render import mixed
from bench.machine import busy_seconds, describe, parse_cpus, pin_self, tree_cpu_seconds
from bench.ramp import (
    HEADER,
    HOST,
    QUICK_STEPS,
    SPREAD,
    STEPS,
    TARGET_P99,
    Auth,
    Step,
    cpu_per_1k_words,
    largest_ok,
    ramp,
    start_pinned,
    verdict,
    wait_quiet,
)
from bench.sse_client import Connection, SseEvent
from bench.tree import MODELS, THREE_MODELS_ENV, fill_trees
from hxchat.render import render_markdown

FULL_DELAY_MS = 30
QUICK_DELAY_MS = 5
RAMP_DELAY_MS = 20
RAMP_WORDS = 300
RAMP_SECONDS = 6.0  # an answer of the ramp lasts this long at any pace
TARGET_RATIO = 3.0  # bytes over the final HTML, uncompressed
TARGET_COMPRESSED = 1.5  # the same, compressed
TARGET_FLAT = 1.5
TARGET_N = 350  # concurrent streams on one worker
IDLE_SECONDS = 5.0  # /proc counts CPU in 10 ms ticks: 2 ms/s resolution
QUIET_PATIENCE = 20.0  # seconds to wait for a shared machine to calm down
TAG = re.compile(rb"<[^>]*>")


def code_block(words: int) -> str:
    """`words` words forming one fenced Python code block, and nothing else."""
    body = "".join(
        f"    total += compute(item_{i}, factor={i % 7})  # step {i}\n" for i in range(words)
    )
    tokens = re.findall(r"\S+\s*", body)[: words - 2]
    return "```python\n    " + "".join(tokens).rstrip() + "\n```\n"


def cases() -> list[tuple[str, str]]:
    """The answers of part a: (name, text)."""
    found = [(f"mixed Markdown {n:,} words", mixed(n)) for n in (500, 2_000, 8_000)]
    found.append(("one code block, 2,000 words", code_block(2_000)))
    return found


def server_env(workdir: Path, delay_ms: int) -> dict[str, str]:
    """Settings for a benchmark server: a fresh SQLite file, limits raised for long prompts."""
    return {
        "HXCHAT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
        "HXCHAT_ECHO_DELAY_MS": str(delay_ms),
        "HXCHAT_MAX_MESSAGE_CHARS": "1000000",
        "HXCHAT_MAX_ANSWER_CHARS": "1000000",
        "HXCHAT_MAX_CONCURRENT_GENERATIONS": "5000",
        "HXCHAT_STREAM_LIFETIME": "1800",  # one connection for the longest answer
    }


@dataclass
class Answer:
    """Part a's figures for one answer."""

    name: str
    words: int
    final_bytes: int
    data_bytes: int
    wire_bytes: int  # uncompressed: as read, or what the compressed chunks decode to
    compressed_bytes: int | None  # on the wire, when the stream was compressed
    cpu: float
    idle_cpu: float  # the server's idle CPU over the same time, for comparison
    ttfb: float
    first_word: float
    frames: int
    other: float  # share of a core that other processes used meanwhile (a noisy machine)
    end_frame: str  # what the end frame carries: the final HTML, or keeps what was streamed


async def one_answer(
    port: int, pid: int, name: str, text: str, idle_rate: float, encoding: str
) -> Answer:
    """Post `text` to a new conversation and read its browser stream to the end, with
    `Accept-Encoding: encoding`."""
    conn = await Connection.open(HOST, port)
    try:
        made = await conn.request("POST", "/api/conversations")
        cookie, cid = made.cookie() or "", json.loads(made.body)["id"]
        frames: list[SseEvent] = []
        first_word: list[float] = []

        def on_event(event: SseEvent) -> bool:
            frames.append(event)
            if not first_word and html.unescape(TAG.sub(b"", event.data).decode()).strip():
                first_word.append(event.at)
            return event.event == "end"

        cpu0, busy0, own0 = tree_cpu_seconds(pid), busy_seconds(), time.process_time()
        posted_at = time.perf_counter()
        posted = await conn.request(
            "POST",
            f"/api/conversations/{cid}/messages",
            {"Cookie": cookie, "Content-Type": "application/json"},
            json.dumps({"content": text}).encode(),
        )
        if posted.status != 202:
            raise RuntimeError(f"POST message answered {posted.status}: {posted.body[:200]!r}")
        gid = json.loads(posted.body)["generation_id"]
        asked_at = time.perf_counter()
        head = await conn.stream(
            f"/generations/{gid}/stream",
            on_event,
            {"Cookie": cookie, "Accept-Encoding": encoding},
        )
        ended_at = time.perf_counter()
        cpu = tree_cpu_seconds(pid) - cpu0
        other = busy_seconds() - busy0 - cpu - (time.process_time() - own0)
    finally:
        conn.close()
    if head.status != 200 or not frames or frames[-1].event != "end":
        raise RuntimeError(f"the browser stream of {name!r} did not end (HTTP {head.status})")
    final = render_markdown(text)
    return Answer(
        name=name,
        words=len(text.split()),
        final_bytes=len(final.encode()),
        data_bytes=sum(len(f.data) for f in frames),
        wire_bytes=head.plain_wire_bytes,
        compressed_bytes=head.wire_bytes if "content-encoding" in head.headers else None,
        cpu=cpu,
        idle_cpu=idle_rate * (ended_at - posted_at),
        ttfb=head.head_at - asked_at,
        first_word=(first_word[0] - posted_at) if first_word else float("nan"),
        frames=len(frames),
        other=max(0.0, other) / (ended_at - posted_at),
        end_frame=_end_frame(frames[-1].data, final),
    )


def _end_frame(data: bytes, final: str) -> str:
    if final.encode() in data:
        return "final HTML"
    if b"hx-preserve" in data:
        return "keeps the streamed HTML (hx-preserve)"
    return "NEITHER final HTML nor hx-preserve"


async def part_a(workdir: Path, delay_ms: int, server_cpus: set[int], encoding: str) -> None:
    print(
        f"\n== a. one answer at a time, browser stream, echo delay {delay_ms} ms per word, "
        f"Accept-Encoding: {encoding} =="
    )
    server = start_pinned(workdir, server_env(workdir, delay_ms), server_cpus)
    try:
        pid = server.process.pid
        before = tree_cpu_seconds(pid)
        await asyncio.sleep(IDLE_SECONDS)
        idle_rate = (tree_cpu_seconds(pid) - before) / IDLE_SECONDS
        print(f"server idle CPU: {idle_rate * 1000:.1f} ms per second (included in CPU below)")
        await one_answer(server.port, pid, "warm-up", mixed(100), idle_rate, encoding)
        print(
            f"{'answer':<29}{'words':>6}{'final KB':>9}{'data x':>8}{'wire x':>8}{'gzip x':>8}"
            f"{'CPU s/1k words':>15}{'(idle part)':>12}{'TTFB ms':>9}{'1st word ms':>12}"
            f"{'events':>8}{'other CPU':>10}  end frame"
        )
        results = []
        for name, text in cases():
            await wait_quiet(pid, patience=QUIET_PATIENCE)
            a = await one_answer(server.port, pid, name, text, idle_rate, encoding)
            results.append(a)
            k = a.words / 1000
            gz = "-" if a.compressed_bytes is None else f"{a.compressed_bytes / a.final_bytes:.2f}"
            print(
                f"{a.name:<29}{a.words:>6}{a.final_bytes / 1024:>9.1f}"
                f"{a.data_bytes / a.final_bytes:>8.2f}{a.wire_bytes / a.final_bytes:>8.2f}{gz:>8}"
                f"{a.cpu / k:>15.3f}{a.idle_cpu / k:>12.3f}{a.ttfb * 1000:>9.1f}"
                f"{a.first_word * 1000:>12.1f}{a.frames:>8}{a.other:>10.0%}  {a.end_frame}",
                flush=True,
            )
    finally:
        server.stop()
    worst = max(a.data_bytes / a.final_bytes for a in results)
    worst_wire = max(a.wire_bytes / a.final_bytes for a in results)
    mixed_results = [a for a in results if a.name.startswith("mixed")]
    per_k = [a.cpu / (a.words / 1000) for a in mixed_results]
    net_k = [(a.cpu - a.idle_cpu) / (a.words / 1000) for a in mixed_results]
    flat = max(per_k) / min(per_k) if min(per_k) > 0 else float("inf")
    net = max(net_k) / min(net_k) if min(net_k) > 0 else float("inf")
    print(
        f"target: bytes ratio <= {TARGET_RATIO:g} at every length and shape: worst {worst:.2f} "
        f"in SSE data -> {'met' if worst <= TARGET_RATIO else 'MISSED'}; on the wire "
        f"(HTTP framing and SSE field names included) {worst_wire:.2f} -> "
        f"{'met' if worst_wire <= TARGET_RATIO else 'MISSED'}"
    )
    compressed = [a.compressed_bytes / a.final_bytes for a in results if a.compressed_bytes]
    if compressed:
        worst_gz = max(compressed)
        print(
            f"target: compressed bytes on the wire over the final HTML <= {TARGET_COMPRESSED:g} "
            f"at every length and shape: worst {worst_gz:.2f} -> "
            f"{'met' if worst_gz <= TARGET_COMPRESSED else 'MISSED'}"
        )
    print(
        f"target: CPU per 1,000 words flat within {TARGET_FLAT:g}x from 500 to 8,000 words "
        f"(mixed): max/min {flat:.2f} -> {'met' if flat <= TARGET_FLAT else 'MISSED'} "
        f"(without the idle part: {net:.2f})"
    )


# Password mode with one user whose API token every request carries: one owner for all
# N conversations, so the per-owner limits are lifted (they are counted all the same).
TOKEN_ENV = {
    "HXCHAT_AUTH": "password",
    "HXCHAT_RATE_LIMIT": "1000000/minute",
    "HXCHAT_MAX_ANSWERS_PER_USER": "1000000",
}


def make_token(workdir: Path, env: dict[str, str]) -> str:
    """A user `bench` and an API token of theirs, made with the commands."""
    add_account(workdir, env, "bench", "a bench password")
    token = run_hxchat(workdir, env, "tokens", "add", "bench", "ramp")
    assert token.returncode == 0, token.stderr
    return token.stdout.split()[-1]


async def more_tokens(port: int, bearer: dict[str, str], count: int) -> list[dict[str, str]]:
    """`count` API tokens of the same user, made through `POST /api/tokens`: a client
    each, as many programs (or people) would have, so each stream's sign-in is its own."""
    conn = await Connection.open(HOST, port)
    try:
        made = []
        for i in range(count):
            body = json.dumps({"name": f"client {i}"}).encode()
            headers = {**bearer, "Content-Type": "application/json"}
            answer = await conn.request("POST", "/api/tokens", headers, body)
            if answer.status != 201:
                raise RuntimeError(f"POST /api/tokens answered {answer.status}")
            made.append({"Authorization": f"Bearer {json.loads(answer.body)['token']}"})
        return made
    finally:
        conn.close()


def ramp_words(delay_ms: int) -> int:
    """Words per answer of the ramp: as many as fill 6 s at `delay_ms` a word (300 at
    20 ms), so that a faster model's streams overlap as long as the tutorial's."""
    return max(1, round(RAMP_SECONDS * 1000 / delay_ms)) if delay_ms else RAMP_WORDS


async def part_b(
    workdir: Path,
    steps: tuple[int, ...],
    server_cpus: set[int],
    deadline: float,
    delay_ms: int = RAMP_DELAY_MS,
    kinds: tuple[str, ...] = ("json", "browser"),
    auth: str = "none",
    tree: tuple[int, int] | None = None,
    three_models: bool = False,
) -> None:
    words = ramp_words(delay_ms)
    mode = {
        "none": "none",
        "token": "password, one user's API token on every request",
        "tokens": "password, an API token per client",
    }[auth]
    print(
        f"\n== b. N concurrent conversations, {words} words each at {delay_ms} ms per word, "
        f"1 worker, SQLite + in-memory event log, HXCHAT_AUTH={mode} =="
    )
    if three_models:
        print(f"three models offered: {', '.join(MODELS)} (the answers are echo's)")
    if tree:
        print(
            f"each conversation first holds a tree of {tree[0]} turns, {tree[1]} answers "
            "to each question (written into the database before the step, not timed)"
        )
    print(
        "json    = /api/generations/{id}/events: text deltas merged to <= 20 events/s;\n"
        "browser = /generations/{id}/stream, HTML frames coalesced to <= 20/s (on both, "
        "lateness includes up to 50 ms of merging by design).\n"
        f"Clients start spread over {SPREAD:g} s; lateness = arrival - due time (README); "
        "steady = p99 of the words due after the last stream started.\n"
        "CPU columns: % of one core over the step; us/word = server CPU per streamed word."
    )
    print(HEADER)
    found: dict[str, list[Step]] = {}
    for i, kind in enumerate(kinds):
        sub = workdir / kind
        sub.mkdir()
        env = server_env(sub, delay_ms)
        if three_models:
            env.update(THREE_MODELS_ENV)
        prepare = None
        if tree:
            prepare = functools.partial(
                fill_trees, sub / "bench.db", turns=tree[0], versions=tree[1]
            )
        headers: Auth | None = None
        if auth in ("token", "tokens"):
            env.update(TOKEN_ENV)
            headers = {"Authorization": f"Bearer {make_token(sub, env)}"}
        server = start_pinned(sub, env, server_cpus)
        try:
            if auth == "tokens" and isinstance(headers, dict):
                headers = await more_tokens(server.port, headers, max(steps))
            share = time.monotonic() + (deadline - time.monotonic()) / (len(kinds) - i)
            done = await ramp(
                server.port,
                server.process.pid,
                kind,
                steps,
                deadline=share,
                words=words,
                delay=delay_ms / 1000,
                auth=headers,
                prepare=prepare,
            )
        finally:
            server.stop()
        found[kind] = done
    for kind, done in found.items():
        met = "met" if largest_ok(done) >= TARGET_N else "MISSED"
        print(
            f"largest N with p99 < {TARGET_P99 * 1000:.0f} ms and no errors, {kind} stream: "
            f"{verdict(done, steps)}; target >= {TARGET_N} -> {met}; server CPU "
            f"{cpu_per_1k_words(done):.0f} ms per 1,000 words over its steps"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="part a at 5 ms per word instead of 30"
    )
    parser.add_argument("--part", choices=("a", "b", "all"), default="all")
    parser.add_argument(
        "--encoding",
        default="gzip",
        help="Accept-Encoding of part a's reads (gzip, as browsers; identity for none)",
    )
    parser.add_argument("--steps", default=None, help="ramp steps, e.g. 50,100,200")
    parser.add_argument("--server-cpus", default="0", help="CPUs of the server (taskset -c)")
    parser.add_argument("--client-cpus", default="1", help="CPUs of this load generator")
    parser.add_argument("--budget", type=float, default=480, help="seconds for the whole run")
    parser.add_argument(
        "--delay-ms", type=int, default=RAMP_DELAY_MS, help="part b: echo delay per word"
    )
    parser.add_argument(
        "--stream", choices=("json", "browser", "both"), default="both", help="part b's streams"
    )
    parser.add_argument(
        "--auth",
        choices=("none", "token", "tokens"),
        default="none",
        help="part b: mode none (a cookie each), or password mode with one user's API token "
        "on every request (token) or a token per client (tokens)",
    )
    parser.add_argument(
        "--three-models", action="store_true", help="part b: offer three models (#10)"
    )
    parser.add_argument(
        "--tree",
        default=None,
        help="part b: TURNS,VERSIONS of history in each conversation first, e.g. 20,5",
    )
    args = parser.parse_args()
    tree = tuple(int(n) for n in args.tree.split(",")) if args.tree else None
    assert tree is None or len(tree) == 2, "--tree TURNS,VERSIONS"
    deadline = time.monotonic() + args.budget
    server_cpus, client_cpus = parse_cpus(args.server_cpus), parse_cpus(args.client_cpus)
    pin_self(client_cpus)
    for line in describe():
        print(line)
    print(f"pinning: server on CPUs {args.server_cpus}, load generator on CPUs {args.client_cpus}")
    steps = tuple(int(s) for s in args.steps.split(",")) if args.steps else None
    # with part a in the same run the ramp takes the coarse steps, to fit the budget
    steps = steps or (STEPS if args.part == "b" and not args.quick else QUICK_STEPS)
    delay_ms = QUICK_DELAY_MS if args.quick else FULL_DELAY_MS
    with tempfile.TemporaryDirectory(prefix="hxchat-bench-") as tmp:
        workdir = Path(tmp)
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            if args.part in ("a", "all"):
                (workdir / "a").mkdir()
                runner.run(part_a(workdir / "a", delay_ms, server_cpus, args.encoding))
            if args.part in ("b", "all"):
                (workdir / "b").mkdir()
                kinds = ("json", "browser") if args.stream == "both" else (args.stream,)
                runner.run(
                    part_b(
                        workdir / "b",
                        steps,
                        server_cpus,
                        deadline,
                        args.delay_ms,
                        kinds,
                        args.auth,
                        (tree[0], tree[1]) if tree else None,
                        args.three_models,
                    )
                )


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (uvicorn[standard] brings it): less client CPU per event."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    main()
