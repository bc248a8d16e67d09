"""What signing in costs, and what an API token adds to a request.

1. argon2id with the parameters hxchat uses (pwdlib's recommended: 64 MiB, 3 passes):
   the time of one hash and of one verify, each on one core. A sign-in costs one
   verify, whether the user exists or not (`auth/passwords.py`).
2. The lockout's worth: a brute-force client from one address gets 20 tries (5 per
   username), then is locked out for 15 minutes before any password is checked: the
   CPU share that costs at most is printed.
   Then measured: a real `hxchat serve` (password mode) hammered for `BRUTE_SECONDS`
   by a client sending wrong passwords for ever-new usernames from one address, as
   fast as 8 connections allow: the server's CPU, in % of one core, before and after
   the lockout sets in.
3. In-process (ASGI, no network), `GET /api/conversations` in mode `none` (signed
   cookie) and in password mode with `Authorization: Bearer` (a token checked against
   the database at most once a second): the time per request of each.

Run: `.venv/bin/python -m bench.bench_auth` (about half a minute).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from tests.servers import start_server

from bench.machine import describe, tree_cpu_seconds
from hxchat.app import create_app
from hxchat.auth.passwords import HASHER
from hxchat.config import load_settings

ROUNDS = 10
REQUESTS = 2_000
BRUTE_SECONDS = 10.0
BRUTE_CONNECTIONS = 8


def argon2_times() -> tuple[float, float]:
    hashes, verifies = [], []
    stored = HASHER.hash("a password of some length")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        HASHER.hash("a password of some length")
        hashes.append(time.perf_counter() - start)
        start = time.perf_counter()
        HASHER.verify("a wrong password guess", stored)
        verifies.append(time.perf_counter() - start)
    return statistics.median(hashes), statistics.median(verifies)


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


async def brute_force(workdir: Path) -> tuple[int, int, float, float, float]:
    """(tries, refused with 429, seconds to the lockout, server CPU % of one core before
    it and after it) of a brute-force client against a real server."""
    env = {
        "HXCHAT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'brute.db'}",
        "HXCHAT_AUTH": "password",
    }
    server = start_server(workdir, env)
    try:
        server.wait_ready()
        tries = refused = 0
        locked_at: float | None = None
        cpu_at_lock = 0.0
        began, cpu0 = time.monotonic(), tree_cpu_seconds(server.process.pid)
        until = began + BRUTE_SECONDS

        async def attacker(client: httpx.AsyncClient, n: int) -> None:
            nonlocal tries, refused, locked_at, cpu_at_lock
            i = 0
            while time.monotonic() < until:
                i += 1
                form = {"username": f"guess{n}-{i}", "password": "hunter2hunter2"}
                answer = await client.post(f"{server.url}/login", data=form)
                tries += 1
                if answer.status_code == 429:
                    refused += 1
                    if locked_at is None:
                        locked_at = time.monotonic()
                        cpu_at_lock = tree_cpu_seconds(server.process.pid)

        async with httpx.AsyncClient(timeout=30) as client:
            await asyncio.gather(*(attacker(client, n) for n in range(BRUTE_CONNECTIONS)))
        ended, cpu1 = time.monotonic(), tree_cpu_seconds(server.process.pid)
    finally:
        server.stop()
    if locked_at is None:
        return tries, refused, float("nan"), (cpu1 - cpu0) / (ended - began) * 100, float("nan")
    before = (cpu_at_lock - cpu0) / (locked_at - began) * 100
    after = (cpu1 - cpu_at_lock) / (ended - locked_at) * 100
    return tries, refused, locked_at - began, before, after


def main() -> None:
    for line in describe():
        print(line)
    hash_s, verify_s = argon2_times()
    print(f"argon2id hash:   {hash_s * 1000:6.1f} ms (median of {ROUNDS})")
    print(f"argon2id verify: {verify_s * 1000:6.1f} ms: the CPU cost of one sign-in")
    worst = 20 * verify_s / (15 * 60)  # one address: 20 failures, then locked 15 minutes
    print(
        f"lockout: one brute-force client from one address costs at most "
        f"{worst * 100:.3f} % of a core (20 verifies per 15 minutes)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tries, refused, lock_s, before, after = asyncio.run(brute_force(Path(tmp)))
    print(
        f"brute force for {BRUTE_SECONDS:g} s, {BRUTE_CONNECTIONS} connections, one address: "
        f"{tries} tries, {refused} refused (429); locked out after {lock_s:.1f} s; server CPU "
        f"{before:.0f} % of a core until then, {after:.1f} % of a core once locked out"
    )
    with tempfile.TemporaryDirectory() as tmp:
        none = asyncio.run(per_request("none", Path(tmp)))
        token = asyncio.run(per_request("password", Path(tmp)))
    print(f"GET /api/conversations, mode none (cookie):       {none * 1e6:7.0f} µs")
    print(f"GET /api/conversations, password mode (Bearer):   {token * 1e6:7.0f} µs")


if __name__ == "__main__":
    main()
