"""Server CPU per 1,000 streamed words at a fixed load, on a machine that may be busy.

The ramps (bench_stream.py part b, bench_scale.py) find how many streams a worker
holds, which only means something on a quiet machine. The CPU the server spends per
streamed word hardly depends on what else runs (it is the process's own utime + stime,
from `/proc`), so this measures that alone: N JSON streams (100 by default) of 300
words at 20 ms a word (bench/ramp.py's step, lateness ignored), `--runs` times on one
server after a short warm-up, and prints each run and the median, for

- `embedded`: `hxchat serve`, 1 worker, SQLite file + in-memory log;
- `shared`: `hxchat serve --workers 2` on PostgreSQL (a fresh database) + Redis,
- `shared1`: the same with one worker, so that the backends' cost compares like for
  like with `embedded` (no second process, every reader on the writer's worker),

all pinned to CPU 0 (the client on CPU 1). `--profile DIR` instead runs one worker of
each configuration under cProfile for one step and prints where its time went (the
profile is written to DIR; the main thread's CPU time, inflated by the profiler's own
work per call: the shares are what matter).
Run: `python -m bench.bench_cpu [--runs 3] [--configs embedded,shared,shared1]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import Server, free_port, hxchat_environment

from bench.bench_scale import REDIS_URL, forget_streams, fresh_database, services_cpu
from bench.bench_stream import loop_factory, server_env
from bench.machine import describe, pin_self, pin_tree
from bench.ramp import Step, run_step, start_pinned

WARM_UP = 20  # streams of the first, unmeasured step
# `hxchat serve` with a profiler that SIGUSR1 starts and SIGUSR2 stops and writes out
# (uvicorn ends by re-raising SIGTERM: nothing at exit would run). Signal handlers run
# in the main thread, the event loop's, which is the one profiled, by its CPU time
# (`time.thread_time`): time spent waiting for a core on a busy machine is not counted.
PROFILED = """
import cProfile, signal, sys, time
profiler = cProfile.Profile(time.thread_time)
signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
def stop(*_):
    profiler.disable()
    profiler.dump_stats({path!r})
signal.signal(signal.SIGUSR2, stop)
sys.argv = ["hxchat", "serve", *sys.argv[1:]]
from hxchat.cli import main
raise SystemExit(main())
"""


def start(workdir: Path, env: dict[str, str], workers: int, profile: Path | None) -> Server:
    """`hxchat serve` on CPU 0; under cProfile (one worker) when `profile` is given."""
    if profile is None:
        args = ("--workers", str(workers)) if workers > 1 else ()
        return start_pinned(workdir, env, {0}, *args)
    port = free_port()
    log_path = workdir / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", PROFILED.format(path=str(profile)), "--port", str(port)],
            cwd=workdir,
            env=hxchat_environment(env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, port, log_path)
    try:
        server.wait_ready(timeout=60)
        pin_tree(process.pid, {0})
    except BaseException:
        server.stop()
        raise
    return server


def measure(
    name: str,
    workdir: Path,
    n: int,
    runs: int,
    profile: Path | None,
    words: int = 300,
    delay_ms: int = 20,
) -> list[float]:
    """Server CPU ms per 1,000 words of each measured run (`runs` steps of `n` streams
    of `words` words at `delay_ms` a word)."""
    env = server_env(workdir, delay_ms)
    shared = name.startswith("shared")
    database = fresh_database() if shared else contextlib.nullcontext("")
    figures: list[float] = []
    steps: list[Step] = []
    with database as url:
        if shared:
            env.update({"HXCHAT_DATABASE_URL": url, "HXCHAT_REDIS_URL": REDIS_URL})
        server = start(workdir, env, 2 if name == "shared" else 1, profile)
        try:
            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                pid = server.process.pid
                svc = services_cpu if shared else None
                for i in range(runs + 1):
                    size = WARM_UP if i == 0 else n
                    if i == 1 and profile is not None:
                        os.kill(pid, signal.SIGUSR1)
                    step = runner.run(
                        run_step(
                            server.port,
                            pid,
                            "json",
                            size,
                            words=words,
                            delay=delay_ms / 1000,
                            services_cpu=svc,
                            patience=0,
                        )
                    )
                    if i == 1 and profile is not None:
                        os.kill(pid, signal.SIGUSR2)
                        runner.run(asyncio.sleep(3))  # writing it out
                    steps.append(step)
                    if i == 0:
                        continue
                    figures.append(report(name, i, step))
        finally:
            server.stop()
        if shared:
            forget_streams(steps)
    return figures


def report(name: str, run: int, step: Step) -> float:
    """Print one measured run; its server CPU ms per 1,000 words."""
    per_1k = step.server_cpu / step.words * 1e6 if step.words else float("nan")
    per_answer = step.server_cpu / step.n * 1e3 if step.n else float("nan")
    other = (step.busy - step.server_cpu - step.client_cpu) / step.wall
    print(
        f"{name:<9} run {run}: {step.words:>6} words, server CPU {step.server_cpu:6.2f} s"
        f" -> {per_1k:6.1f} ms per 1,000 words, {per_answer:5.2f} ms per answer;"
        f" p99 {step.p(0.99) * 1000:.0f} ms,"
        f" {step.errors} errors; rest of the machine {other:.0%} of a core",
        flush=True,
    )
    return per_1k


def show_profile(path: Path, top: int) -> None:
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="embedded,shared")
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--words", type=int, default=None, help="words per answer (3: mostly the fixed cost)"
    )
    parser.add_argument(
        "--delay-ms", type=int, default=20, help="ms a word; answers keep their 6 s by default"
    )
    parser.add_argument("--profile", type=Path, default=None, help="a directory for profiles")
    parser.add_argument("--top", type=int, default=45, help="functions shown per profile")
    args = parser.parse_args()
    words = args.words if args.words is not None else 6000 // args.delay_ms
    pin_self({1})
    for line in describe():
        print(line)
    print(
        f"{args.streams} JSON streams of {words} words at {args.delay_ms} ms a word; "
        "server on CPU 0, client on CPU 1; CPU = utime + stime of the server's process tree"
    )
    medians: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="hxchat-bench-") as tmp:
        for name in args.configs.split(","):
            workdir = Path(tmp) / name
            workdir.mkdir()
            profile = None
            if args.profile is not None:
                args.profile.mkdir(parents=True, exist_ok=True)
                profile = args.profile.resolve() / f"{name}.prof"
            figures = measure(
                name,
                workdir,
                args.streams,
                1 if profile else args.runs,
                profile,
                words,
                args.delay_ms,
            )
            if profile is not None:
                show_profile(profile, args.top)
            elif figures:
                medians[name] = statistics.median(figures)
    for name, value in medians.items():
        print(f"{name}: median {value:.1f} ms of server CPU per 1,000 words")
    for name in ("shared", "shared1"):
        if name in medians and "embedded" in medians:
            print(f"{name} over embedded: {medians[name] / medians['embedded']:.2f}")


if __name__ == "__main__":
    main()
