"""What signing in costs, and what an API token adds to a request.

1. argon2id with the parameters hxchat uses (pwdlib's recommended: 64 MiB, 3 passes):
   the CPU time of one hash and of one verify (and the verify's wall time). A sign-in
   costs one verify, whether the user exists or not (`auth/passwords.py`).
2. The lockout's worth: a brute-force client gets 5 tries per username (20 per
   address), then is locked out for 15 minutes before any password is checked.
   Measured: a real `hxchat serve` (password mode, on one core) hammered for
   `BRUTE_SECONDS` by a client sending wrong passwords for one user from one address,
   as fast as `BRUTE_CONNECTIONS` (16) connections allow: the server's CPU, in % of one
   core, before and after the lockout sets in, and how long a refusal took to come
   (the tarpit, `auth/tarpit.py`, holds each for a second).
3. In-process (ASGI, no network), `GET /api/conversations` in mode `none` (signed
   cookie) and in password mode with `Authorization: Bearer` (a token checked against
   the database at most once a second): the time per request of each.

Run: `.venv/bin/python -m bench.bench_auth` (about a minute).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tests.servers import add_account

from bench.machine import describe, pin_self, tree_cpu_seconds
from bench.ramp import start_pinned
from hxchat.app import create_app
from hxchat.auth.passwords import HASHER
from hxchat.config import load_settings

ROUNDS = 10
REQUESTS = 2_000
BRUTE_SECONDS = 20.0
BRUTE_CONNECTIONS = 16
IDLE_SECONDS = 5.0


def argon2_times() -> tuple[float, float, float]:
    """Median CPU seconds (every thread of this process) of one hash and one verify, and
    the verify's median wall time (longer when the machine is busy)."""
    hashes, verifies, walls = [], [], []
    stored = HASHER.hash("a password of some length")
    for _ in range(ROUNDS):
        cpu = time.process_time()
        HASHER.hash("a password of some length")
        hashes.append(time.process_time() - cpu)
        cpu, wall = time.process_time(), time.perf_counter()
        HASHER.verify("a wrong password guess", stored)
        verifies.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(hashes), statistics.median(verifies), statistics.median(walls)


async def per_request(auth: str, workdir: Path) -> float:
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{workdir / f'{auth}.db'}", auth=auth
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            if auth == "password":
                user = await app.state.accounts.add("bench", "a bench password")
                made = await app.state.accounts.create_token(user, "bench")
                client.headers["Authorization"] = f"Bearer {made.secret}"
            assert (await client.get("/api/conversations")).status_code == 200
            start = time.perf_counter()
            for _ in range(REQUESTS):
                await client.get("/api/conversations")
            return (time.perf_counter() - start) / REQUESTS


@dataclass
class BruteForce:
    tries: int = 0
    refused: int = 0  # 429
    locked_after: float = float("nan")  # seconds from the start to the first 429
    cpu_before: float = float("nan")  # server CPU, % of one core, until the lockout
    cpu_after: float = float("nan")  # the same, once locked out
    cpu_idle: float = float("nan")  # the same, left alone for IDLE_SECONDS first
    refusal_times: list[float] = field(default_factory=list)


async def brute_force(workdir: Path) -> BruteForce:
    """A brute-force client against one user of a real server, from one address."""
    env = {
        "HXCHAT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'brute.db'}",
        "HXCHAT_AUTH": "password",
    }
    add_account(workdir, env, "alice", "alice's real password")
    server = start_pinned(workdir, env, {0})
    found = BruteForce()
    try:
        idle0 = tree_cpu_seconds(server.process.pid)
        await asyncio.sleep(IDLE_SECONDS)
        found.cpu_idle = (tree_cpu_seconds(server.process.pid) - idle0) / IDLE_SECONDS * 100
        cpu_at_lock = 0.0
        began, cpu0 = time.monotonic(), tree_cpu_seconds(server.process.pid)
        until = began + BRUTE_SECONDS

        async def attacker(client: httpx.AsyncClient, n: int) -> None:
            nonlocal cpu_at_lock
            i = 0
            while time.monotonic() < until:
                i += 1
                form = {"username": "alice", "password": f"guess {n}-{i}"}
                sent = time.monotonic()
                answer = await client.post(f"{server.url}/login", data=form)
                found.tries += 1
                if answer.status_code == 429:
                    found.refused += 1
                    found.refusal_times.append(time.monotonic() - sent)
                    if found.refused == 1:
                        found.locked_after = time.monotonic() - began
                        cpu_at_lock = tree_cpu_seconds(server.process.pid)

        limits = httpx.Limits(max_connections=BRUTE_CONNECTIONS)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            await asyncio.gather(*(attacker(client, n) for n in range(BRUTE_CONNECTIONS)))
        ended, cpu1 = time.monotonic(), tree_cpu_seconds(server.process.pid)
    finally:
        server.stop()
    if found.refused:
        found.cpu_before = (cpu_at_lock - cpu0) / found.locked_after * 100
        found.cpu_after = (cpu1 - cpu_at_lock) / (ended - began - found.locked_after) * 100
    return found


def main() -> None:
    pin_self({1})  # the server runs on CPU 0
    for line in describe():
        print(line)
    hash_s, verify_s, verify_wall = argon2_times()
    print(f"argon2id hash:   {hash_s * 1000:6.1f} ms of CPU (median of {ROUNDS})")
    print(
        f"argon2id verify: {verify_s * 1000:6.1f} ms of CPU: the cost of one sign-in "
        f"({verify_wall * 1000:.1f} ms of wall time)"
    )
    worst = 20 * verify_s / (15 * 60)  # one address: 20 failures, then locked 15 minutes
    print(
        f"lockout: one brute-force client from one address costs at most "
        f"{worst * 100:.3f} % of a core (20 verifies per 15 minutes)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        brute = asyncio.run(brute_force(Path(tmp)))
    waits = sorted(brute.refusal_times) or [float("nan")]
    print(
        f"brute force for {BRUTE_SECONDS:g} s against one user from one address, "
        f"{BRUTE_CONNECTIONS} connections: {brute.tries} tries, {brute.refused} refused (429), "
        f"locked out after {brute.locked_after:.1f} s; server CPU {brute.cpu_before:.0f} % "
        f"of a core until then, {brute.cpu_after:.1f} % of a core once locked out (idle: "
        f"{brute.cpu_idle:.1f} %); a "
        f"refusal came after {statistics.median(waits):.2f} s (median; "
        f"{waits[0]:.2f}-{waits[-1]:.2f})"
    )
    with tempfile.TemporaryDirectory() as tmp:
        none = asyncio.run(per_request("none", Path(tmp)))
        token = asyncio.run(per_request("password", Path(tmp)))
    print(f"GET /api/conversations, mode none (cookie):       {none * 1e6:7.0f} µs")
    print(f"GET /api/conversations, password mode (Bearer):   {token * 1e6:7.0f} µs")


if __name__ == "__main__":
    main()
