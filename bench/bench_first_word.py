"""The first word: from the POST of a message to the first text on its JSON stream.

Issue 13's yardstick: what hxchat adds, before the first word reaches a program, to
what a bare FastAPI endpoint needs for the same echo answer (2,000 words by default,
`HXCHAT_ECHO_DELAY_MS=0`: the model is never the one that waits). Three servers on
loopback, each pinned to CPU 0 with the load generator (this process) on CPU 1:

1. `hxchat serve` on the embedded defaults (a fresh SQLite file, the in-memory log);
2. `hxchat serve` on PostgreSQL (a fresh database, made and dropped here) and Redis;
3. `bare`: a tiny FastAPI app defined here, under uvicorn as `hxchat serve` runs it,
   that stores nothing: its POST answers 202 with an events URL, whose GET streams the
   echo model's words as SSE `delta` events, one per word.

Per run: a new conversation (not timed), the POST (timed from just before it is
written), the 202, the GET of the events URL on a second connection opened beforehand
(as a browser's EventSource would have), and the first event that carries text.
Printed: median and p90 over `--runs` runs of POST -> 202 and POST -> first text, and
what each hxchat configuration adds to the bare endpoint. Nothing is asserted.
Run: `python -m bench.bench_first_word [--runs 50] [--no-shared]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from tests.servers import Server, free_port, hxchat_environment

from bench.bench_stream import loop_factory, server_env
from bench.machine import describe, parse_cpus, pin_self
from bench.ramp import HOST, start_pinned, wait_quiet
from bench.sse_client import Connection, SseEvent, now
from hxchat.domain import Role, TextDelta, Turn
from hxchat.providers.echo import EchoModel

ROOT = Path(__file__).resolve().parent.parent
WARM_UP = 5
TARGET_ADDED_MS = 5.0  # on the embedded defaults, over the bare endpoint

# -- the bare endpoint -------------------------------------------------------------

bare_app = FastAPI()
_prompts: dict[str, str] = {}


@bare_app.get("/healthz")
async def _healthz() -> dict[str, str]:
    return {"status": "ok"}


@bare_app.post("/api/conversations")
async def _new_conversation() -> JSONResponse:
    return JSONResponse({"id": uuid.uuid4().hex}, status_code=201)


@bare_app.post("/api/conversations/{cid}/messages")
async def _post_message(cid: str, request: Request) -> JSONResponse:
    gid = uuid.uuid4().hex
    _prompts[gid] = (await request.json())["content"]
    url = f"/api/generations/{gid}/events"
    return JSONResponse({"message_id": 1, "generation_id": gid, "events_url": url}, status_code=202)


@bare_app.get("/api/generations/{gid}/events")
async def _events(gid: str) -> StreamingResponse:
    text = _prompts.pop(gid, "")

    async def stream() -> AsyncIterator[bytes]:
        count = 0
        async for event in EchoModel(delay=0).stream([Turn(Role.USER, text)]):
            if isinstance(event, TextDelta):
                count += 1
                data = json.dumps({"text": event.text}, ensure_ascii=False)
                yield f"id: {count}\nevent: delta\ndata: {data}\n\n".encode()
        yield f'id: {count + 1}\nevent: done\ndata: {{"status": "complete"}}\n\n'.encode()

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


def start_bare(workdir: Path, cpus: set[int]) -> Server:
    """The bare app under uvicorn, pinned to `cpus`, ready to answer."""
    port = free_port()
    log_path = workdir / f"bare-{port}.log"
    command = [sys.executable, "-m", "uvicorn", "bench.bench_first_word:bare_app"]
    command += ["--host", HOST, "--port", str(port), "--log-level", "warning"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=hxchat_environment({}), stdout=log, stderr=subprocess.STDOUT
        )
    server = Server(process, port, log_path)
    try:
        os.sched_setaffinity(process.pid, cpus)
        server.wait_ready(timeout=60)
    except BaseException:
        server.stop()
        raise
    return server


# -- one measured answer -----------------------------------------------------------


@dataclass
class Run:
    accepted: float  # seconds from writing the POST to the whole 202
    first_text: float  # seconds from writing the POST to the first text event


def prompt(words: int) -> str:
    return " ".join(f"w{i}" for i in range(words))


async def one_run(port: int, text: str) -> Run:
    conn = await Connection.open(HOST, port)
    stream = await Connection.open(HOST, port)
    try:
        made = await conn.request("POST", "/api/conversations")
        cookie, cid = made.cookie() or "", json.loads(made.body)["id"]
        headers = {"Cookie": cookie} if cookie else {}
        body = json.dumps({"content": text}).encode()
        first: list[float] = []

        def on_event(event: SseEvent) -> bool:
            if event.event == "delta" and json.loads(event.data).get("text"):
                first.append(event.at)
                return True  # close it: the rest of the answer is not measured
            return event.event in ("done", "error")

        posted_at = now()
        posted = await conn.request(
            "POST",
            f"/api/conversations/{cid}/messages",
            {**headers, "Content-Type": "application/json"},
            body,
        )
        accepted_at = now()
        if posted.status != 202:
            raise RuntimeError(f"POST message answered {posted.status}: {posted.body[:200]!r}")
        head = await stream.stream(json.loads(posted.body)["events_url"], on_event, headers)
        if head.status != 200 or not first:
            raise RuntimeError(f"the stream brought no text (HTTP {head.status})")
        return Run(accepted_at - posted_at, first[0] - posted_at)
    finally:
        conn.close()
        stream.close()


async def measure(port: int, pid: int, runs: int, words: int) -> list[Run]:
    text = prompt(words)
    for _ in range(WARM_UP):
        await one_run(port, text)
        await asyncio.sleep(0.05)
    await wait_quiet(pid, patience=20)
    done = []
    for _ in range(runs):
        done.append(await one_run(port, text))
        await asyncio.sleep(0.05)  # the answer ends and is stored before the next POST
    return done


def quantiles(values: list[float]) -> tuple[float, float]:
    """(median, p90) in milliseconds."""
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return statistics.median(ordered) * 1000, p90 * 1000


# -- the configurations ------------------------------------------------------------


@contextlib.contextmanager
def shared_services() -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database and Redis (bench_scale.py's), as settings."""
    from bench.bench_scale import REDIS_URL, fresh_database

    with fresh_database() as url:
        yield {"HXCHAT_DATABASE_URL": url, "HXCHAT_REDIS_URL": REDIS_URL}


def run_config(
    name: str, workdir: Path, cpus: set[int], runs: int, words: int, extra: dict[str, str] | None
) -> list[Run]:
    if name == "bare":
        server = start_bare(workdir, cpus)
    else:
        env = server_env(workdir, 0)
        env.update(extra or {})
        server = start_pinned(workdir, env, cpus)
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(measure(server.port, server.process.pid, runs, words))
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--words", type=int, default=2_000)
    parser.add_argument("--no-shared", action="store_true", help="skip PostgreSQL + Redis")
    parser.add_argument("--server-cpus", default="0", help="CPUs of the servers (taskset -c)")
    parser.add_argument("--client-cpus", default="1", help="CPUs of this load generator")
    args = parser.parse_args()
    server_cpus = parse_cpus(args.server_cpus)
    pin_self(parse_cpus(args.client_cpus))
    for line in describe():
        print(line)
    print(
        f"echo answer of {args.words:,} words at full speed; {args.runs} runs per server "
        f"after {WARM_UP} warm-up runs; server on CPUs {args.server_cpus}, client on "
        f"{args.client_cpus}\n"
    )
    print(f"{'server':<36}{'POST->202 p50/p90 ms':>22}{'POST->1st text p50/p90 ms':>27}")
    found: dict[str, list[Run]] = {}
    configs = ["bare", "hxchat, SQLite + memory log"]
    if not args.no_shared:
        configs.append("hxchat, PostgreSQL + Redis")
    with tempfile.TemporaryDirectory(prefix="hxchat-bench-") as tmp:
        for i, name in enumerate(configs):
            workdir = Path(tmp) / str(i)
            workdir.mkdir()
            shared = shared_services() if "Redis" in name else contextlib.nullcontext(None)
            with shared as extra:
                runs = run_config(name, workdir, server_cpus, args.runs, args.words, extra)
            found[name] = runs
            a50, a90 = quantiles([r.accepted for r in runs])
            f50, f90 = quantiles([r.first_text for r in runs])
            print(f"{name:<36}{f'{a50:.1f}/{a90:.1f}':>22}{f'{f50:.1f}/{f90:.1f}':>27}", flush=True)
    bare50, _ = quantiles([r.first_text for r in found["bare"]])
    for name, runs in found.items():
        if name == "bare":
            continue
        added = quantiles([r.first_text for r in runs])[0] - bare50
        line = f"{name}: adds {added:.1f} ms (median) to the bare endpoint's first text"
        if "SQLite" in name:
            verdict = "met" if added <= TARGET_ADDED_MS else "MISSED"
            line += f"; target <= {TARGET_ADDED_MS:g} ms -> {verdict}"
        print(line)


if __name__ == "__main__":
    main()
