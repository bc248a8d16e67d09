"""Scale-out: two workers on Redis + PostgreSQL beside one worker on the embedded defaults.

Issue 5's yardstick: the concurrency ramp of bench/ramp.py (N conversations, 300 words
each at 20 ms a word) against real `hxchat serve` processes, reporting the largest N
whose p99 word lateness stays under 100 ms without errors, and the server's CPU per
streamed word, summed over the whole process tree (uvicorn's supervisor and workers).
Configurations:

1. `hxchat serve` (1 worker), SQLite file + in-memory event log; server on CPU 0;
2. `hxchat serve --workers 2`, PostgreSQL (a fresh database, made and dropped here,
   `hxchat db upgrade` first) + Redis; both workers on CPU 0, so CPU per word compares
   like with like;
3. the same two workers free to use both cores (`--server-cpus 0-1`), which they
   share with the load generator: this machine has few cores, and the output says so.

`--delay-ms 20,2` runs each configuration at 20 ms a word (300 words) and at 2 ms a
word (3,000 words: a 500-token/s model, answers that still last 6 s), printed side by
side in the summary; `--configs 1,2` picks configurations. The load generator (this
process) stays on CPU 1. Redis and PostgreSQL are system
services, left unpinned; their CPU is shown beside the figures (all their processes,
so other users of them on this machine count too). Nothing is asserted; every run is
bounded in steps and time. Run: `python -m bench.bench_scale [--quick]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.bench_stream import RAMP_DELAY_MS, loop_factory, ramp_words, server_env
from bench.machine import cpu_seconds, describe, named_processes, parse_cpus, pin_self
from bench.ramp import (
    HEADER,
    QUICK_STEPS,
    SPREAD,
    STEPS,
    TARGET_P99,
    Step,
    ramp,
    start_pinned,
    verdict,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


@dataclass
class Config:
    name: str
    workers: int
    shared: bool  # PostgreSQL + Redis
    cpus: set[int]


def services_cpu() -> float:
    """CPU seconds of every Redis and PostgreSQL process on this machine."""
    return cpu_seconds(named_processes("redis-server", "postgres"))


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty PostgreSQL database with hxchat's schema; dropped afterwards."""
    name = f"hxchat_bench_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        engine = create_async_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(sql))
        finally:
            await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HXCHAT_")}
        env["HXCHAT_DATABASE_URL"] = url
        subprocess.run(
            [sys.executable, "-m", "hxchat", "db", "upgrade"],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def forget_streams(steps: list[Step]) -> None:
    """Remove the Redis keys of the bench's generations now rather than at their TTL
    (the key layout of hxchat/broker/redis_streams.py, default prefix)."""

    async def unlink() -> None:
        client = Redis.from_url(REDIS_URL)
        try:
            for step in steps:
                keys = [
                    key
                    for gid in step.generation_ids
                    for key in (
                        f"hxchat:gen:{gid}",
                        f"hxchat:gen:{gid}:open",
                        f"hxchat:gen:{gid}:end",
                        f"hxchat:cancel:{gid}",
                    )
                ]
                if keys:
                    await client.unlink(*keys)
        finally:
            await client.aclose()

    asyncio.run(unlink())


def run_config(
    config: Config,
    workdir: Path,
    kind: str,
    steps: tuple[int, ...],
    deadline: float,
    delay_ms: int = RAMP_DELAY_MS,
) -> list[Step]:
    """Start the server of one configuration, ramp it at `delay_ms` a word, stop it."""
    env = server_env(workdir, delay_ms)
    args: tuple[str, ...] = ()
    database = fresh_database() if config.shared else contextlib.nullcontext("")
    with database as url:
        if config.shared:
            env.update({"HXCHAT_DATABASE_URL": url, "HXCHAT_REDIS_URL": REDIS_URL})
            args = ("--workers", str(config.workers))
        try:
            server = start_pinned(workdir, env, config.cpus, *args)
        except RuntimeError as exc:
            print(f"{config.name}: the server did not start:\n{exc}")
            return []
        try:
            measure = services_cpu if config.shared else None
            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                done = runner.run(
                    ramp(
                        server.port,
                        server.process.pid,
                        kind,
                        steps,
                        deadline=deadline,
                        services_cpu=measure,
                        words=ramp_words(delay_ms),
                        delay=delay_ms / 1000,
                    )
                )
        finally:
            server.stop()
        if config.shared:
            forget_streams(done)
        return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"steps {QUICK_STEPS} only")
    parser.add_argument("--stream", choices=("json", "browser"), default="json")
    parser.add_argument("--steps", default=None, help="ramp steps, e.g. 50,100,200")
    parser.add_argument("--client-cpus", default="1", help="CPUs of this load generator")
    parser.add_argument("--budget", type=float, default=None, help="seconds for the whole run")
    parser.add_argument(
        "--delay-ms",
        default=str(RAMP_DELAY_MS),
        help="echo delay per word; several (e.g. 20,2) run every configuration at each",
    )
    parser.add_argument(
        "--configs", default="1,2,3", help="which configurations to run (1-3, see above)"
    )
    args = parser.parse_args()
    delays = [int(d) for d in args.delay_ms.split(",")]
    chosen = [int(c) for c in args.configs.split(",")]
    args.budget = args.budget or 480 * len(delays) * len(chosen) / 3
    deadline = time.monotonic() + args.budget
    steps = tuple(int(s) for s in args.steps.split(",")) if args.steps else None
    steps = steps or (QUICK_STEPS if args.quick else STEPS)
    cores = os.cpu_count() or 1
    pin_self(parse_cpus(args.client_cpus))
    for line in describe():
        print(line)
    both = set(range(cores))
    configs = [
        Config("1 worker, SQLite + in-memory log, server on CPU 0", 1, False, {0}),
        Config("2 workers, PostgreSQL + Redis, both on CPU 0", 2, True, {0}),
        Config(
            f"2 workers, PostgreSQL + Redis, on CPUs 0-{cores - 1} (shared with the client)",
            2,
            True,
            both,
        ),
    ]
    runs = [(c, d) for d in delays for i, c in enumerate(configs, 1) if i in chosen]
    print(f"load generator on CPUs {args.client_cpus}; stream: {args.stream}; ")
    print(
        "answers of 6 s: 300 words at 20 ms per word, 3,000 at 2 ms; clients spread over "
        f"{SPREAD:g} s; steady = p99 of the words due after the last stream started;\n"
        "us/word = server CPU (whole process tree) per streamed word; CPU columns: % of one core."
    )
    results: list[tuple[Config, int, list[Step]]] = []
    with tempfile.TemporaryDirectory(prefix="hxchat-bench-") as tmp:
        for i, (config, delay_ms) in enumerate(runs):
            words = ramp_words(delay_ms)
            print(f"\n== {config.name}; {words} words at {delay_ms} ms a word ==")
            print(HEADER, flush=True)
            share = time.monotonic() + (deadline - time.monotonic()) / (len(runs) - i)
            workdir = Path(tmp) / str(i)
            workdir.mkdir()
            done = run_config(config, workdir, args.stream, steps, share, delay_ms)
            results.append((config, delay_ms, done))
    print("\n== summary ==")
    for config, delay_ms, done in results:
        words = sum(s.words for s in done)
        per_word = sum(s.server_cpu for s in done) / words * 1e6 if words else float("nan")
        print(
            f"{config.name}, {delay_ms} ms a word: largest N with p99 < "
            f"{TARGET_P99 * 1000:.0f} ms and no errors: {verdict(done, steps)}; "
            f"server CPU {per_word:.0f} us per streamed word"
        )


if __name__ == "__main__":
    main()
