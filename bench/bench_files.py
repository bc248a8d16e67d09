"""Uploads beside streaming answers (#11): does a 20 MB photo and a 10 MB PDF, sent
while 200 answers stream on the same worker, make those streams late, and how much
memory does the worker take for them?

One `hxchat serve` (SQLite, echo model at 20 ms a word) pinned to `--server-cpus`; this
process drives it from `--client-cpus`. Twice the same step of the concurrency ramp
(bench/ramp.py: 200 conversations, 300 words each, started over 2 s): first alone, then
with the two uploads (`POST /api/files`) sent one after the other 2.5 s in. Printed:
the streams' p50/p99 word lateness in both runs, each upload's status and time, and
the worker's resident memory before and at its peak (VmHWM of the serving process;
the upload pool's processes, which decode the files, apart).

The files are made here: a photo of noise (JPEG, it barely compresses) and a PDF of
noise pages (Pillow writes it). Nothing is asserted. Run:
`python -m bench.bench_files` (about a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from PIL import Image

from bench.machine import describe, parse_cpus, pin_self, process_tree
from bench.ramp import HOST, TARGET_P99, Step, run_step, start_pinned

STREAMS = 200
DELAY_MS = 20
MB = 1_048_576


def photo(target_mb: float) -> bytes:
    """A JPEG of noise of about `target_mb` (noise keeps JPEG from compressing much)."""
    side = 2000
    while True:
        image = Image.effect_noise((side * 3 // 2, side), 80).convert("RGB")
        out = io.BytesIO()
        image.save(out, "JPEG", quality=95)
        if out.tell() >= target_mb * MB or side > 8000:
            return out.getvalue()
        side = int(side * (target_mb * MB / out.tell()) ** 0.5) + 100


def pdf(target_mb: float) -> bytes:
    """A PDF of noise pages, about `target_mb`."""
    page = Image.effect_noise((1200, 1600), 80).convert("RGB")
    one = io.BytesIO()
    page.save(one, "PDF")
    pages = max(1, int(target_mb * MB / one.tell()))
    out = io.BytesIO()
    page.save(out, "PDF", save_all=True, append_images=[page] * (pages - 1))
    return out.getvalue()


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def upload(port: int, name: str, data: bytes, at: float) -> str:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, at - loop.time()))
    began = time.perf_counter()
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=120) as client:
        response = await client.post("/api/files", files={"file": (name, data)})
    took = time.perf_counter() - began
    size = len(data) / MB
    return f"{name} ({size:.1f} MB): {response.status_code} in {took:.2f} s {response.text[:80]}"


async def with_uploads(
    port: int, pid: int, photo_bytes: bytes, pdf_bytes: bytes
) -> tuple[Step, list[str]]:
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def both() -> list[str]:
        first = await upload(port, "photo.jpg", photo_bytes, start + 2.5)
        second = await upload(port, "report.pdf", pdf_bytes, 0)
        return [first, second]

    step, lines = await asyncio.gather(
        run_step(port, pid, "json", STREAMS, delay=DELAY_MS / 1000), both()
    )
    return step, lines


def show(label: str, step: Step) -> None:
    verdict = "ok" if step.ok else "MISSED"
    print(
        f"{label:<16} N={step.n} p50 {step.p(0.5) * 1000:.1f} ms, "
        f"p99 {step.p(0.99) * 1000:.1f} ms, "
        f"max {step.p(1.0) * 1000:.1f} ms, errors {step.errors}: {verdict} "
        f"(target p99 < {TARGET_P99 * 1000:.0f} ms)"
    )


async def run(workdir: Path, server_cpus: set[int]) -> None:
    photo_bytes, pdf_bytes = photo(20), pdf(10)
    env = {
        "HXCHAT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
        "HXCHAT_FILES_URL": f"file:{workdir / 'files'}",
        "HXCHAT_ECHO_DELAY_MS": str(DELAY_MS),
        "HXCHAT_MAX_FILE_MB": "25",
        "HXCHAT_MAX_CONCURRENT_GENERATIONS": "5000",
        "HXCHAT_RATE_LIMIT": "100000/minute",
        "HXCHAT_MAX_ANSWERS_PER_USER": "1000",
    }
    server = start_pinned(workdir, env, server_cpus)
    try:
        pid = server.process.pid
        alone = await run_step(server.port, pid, "json", STREAMS, delay=DELAY_MS / 1000)
        show("streams alone", alone)
        await asyncio.sleep(2)
        rss_before = memory_kib(pid, "VmRSS")
        hwm_before = memory_kib(pid, "VmHWM")
        step, lines = await with_uploads(server.port, pid, photo_bytes, pdf_bytes)
        show("with uploads", step)
        for line in lines:
            print("  upload", line)
        peak = memory_kib(pid, "VmHWM")
        pool = [p for p in process_tree(pid) if p != pid]
        pool_peak = max((memory_kib(p, "VmHWM") for p in pool), default=0)
        print(
            f"worker memory: {rss_before / 1024:.0f} MiB resident before the uploads, "
            f"peak {peak / 1024:.0f} MiB (peak before them {hwm_before / 1024:.0f} MiB): "
            f"+{(peak - max(rss_before, hwm_before)) / 1024:.0f} MiB over its earlier peak for "
            f"a {len(photo_bytes) / MB:.1f} MB file; upload pool: {len(pool)} processes, "
            f"peak {pool_peak / 1024:.0f} MiB each at most"
        )
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-cpus", default="0", help="CPUs of the server (taskset -c)")
    parser.add_argument("--client-cpus", default="1", help="CPUs of this load generator")
    args = parser.parse_args()
    pin_self(parse_cpus(args.client_cpus))
    for line in describe():
        print(line)
    print(f"pinning: server on CPUs {args.server_cpus}, load generator on {args.client_cpus}")
    with tempfile.TemporaryDirectory(prefix="hxchat-bench-files-") as tmp:
        asyncio.run(run(Path(tmp), parse_cpus(args.server_cpus)))


if __name__ == "__main__":
    main()
