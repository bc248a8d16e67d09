"""Locked-out sign-ins wait before they are refused: a tarpit.

The lockout (`auth.limits`) refuses a locked username or address before any password
is checked, but a client that keeps trying gets its `429` at once and tries again at
once: each refusal is still a request to parse, route and answer (about half a
millisecond), and 16 connections kept busy that way cost the server some 70 % of a
core. So a refused sign-in is answered only after `SECONDS` of an asyncio sleep, which
holds no lock, no thread and no database connection and costs no CPU: the client's
connections sit idle meanwhile, and a brute-force client costs a percent or two of a
core (bench/bench_auth.py).

Waiting requests are bounded, so the tarpit cannot be turned into a way to hold the
server's connections or memory: at most `PER_ADDRESS` from one address and `TOTAL` in
all wait in one worker; a refusal beyond either cap is answered at once and its
connection closed (`Connection: close`), so the client pays a new connection for each.
A person locked out of their own account sees the same page, a second later.
"""

from __future__ import annotations

import asyncio

SECONDS = 1.0
PER_ADDRESS = 32
TOTAL = 1_000


class Tarpit:
    """The requests of one worker waiting before their refusal, by address."""

    def __init__(self) -> None:
        self._waiting: dict[str, int] = {}
        self._total = 0

    async def hold(self, address: str) -> bool:
        """Wait `SECONDS`, and say True; or, when `address` (or everyone) already has as
        many requests waiting as the caps allow, say False at once."""
        held = self._waiting.get(address, 0)
        if held >= PER_ADDRESS or self._total >= TOTAL:
            return False
        self._waiting[address] = held + 1
        self._total += 1
        try:
            await asyncio.sleep(SECONDS)
        finally:
            self._total -= 1
            left = self._waiting[address] - 1
            if left:
                self._waiting[address] = left
            else:
                del self._waiting[address]
        return True
