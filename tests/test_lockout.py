"""The sign-in lockout through the real app (password mode, a real SQLite file): 5
failures lock a username, 20 lock an address, for 15 minutes; a locked-out attempt
checks no password and is answered only after the tarpit's wait, of which one address
may hold only so many at once. docs/api.md#accounts describes what is checked here."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from hxchat.auth import tarpit
from hxchat.config import Settings
from tests import html_tree
from tests.helpers import add_user, sign_in

pytestmark = pytest.mark.usefixtures("cheap_hashing")

CHECKS = re.compile(r"^hxchat_password_checks_total ([0-9.]+)$", re.MULTILINE)


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(auth="password")


async def password_checks(client: httpx.AsyncClient) -> int:
    """How many passwords the app has checked with argon2id (its `/metrics`)."""
    found = CHECKS.search((await client.get("/metrics")).text)
    assert found is not None
    return int(float(found.group(1)))


async def lock_out(client: httpx.AsyncClient, name: str) -> None:
    for _ in range(5):
        assert (await sign_in(client, name, "guess-guess")).status_code == 401


async def test_brute_force_against_one_user_locks_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await add_user(app, "alice")
    await add_user(app, "bob")
    await lock_out(client, "alice")
    locked = await sign_in(client, "alice")  # even the right password
    assert locked.status_code == 429
    assert 840 <= int(locked.headers["retry-after"]) <= 900
    assert "15 minutes" in html_tree.parse(locked.text).find(role="alert").text
    assert (await sign_in(client, "nobody-at-all", "guess-guess")).status_code == 401
    assert (await sign_in(client, "bob")).status_code == 303  # others are not locked out


async def test_brute_force_from_one_address_locks_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await add_user(app, "alice")
    for attempt in range(20):
        assert (await sign_in(client, f"user{attempt % 5}", "guess")).status_code == 401
    locked = await sign_in(client, "alice")
    assert locked.status_code == 429 and "retry-after" in locked.headers


async def test_a_locked_out_attempt_waits_and_checks_no_password(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await add_user(app, "alice")
    before = await password_checks(client)
    await lock_out(client, "alice")
    assert await password_checks(client) == before + 5  # each failure was a real check

    for password in ("guess-guess", "correct horse battery"):
        began = time.monotonic()
        locked = await sign_in(client, "alice", password, next="/c/x")
        waited = time.monotonic() - began
        assert locked.status_code == 429
        assert waited >= tarpit.SECONDS
        page = html_tree.parse(locked.text)
        assert "try again in 15 minutes" in page.find(role="alert").text
        assert page.find("input", id="username").attrs["value"] == "alice"
        assert page.find("input", name="next").attrs["value"] == "/c/x"
    assert await password_checks(client) == before + 5  # none for the locked attempts


async def test_one_address_holds_only_so_many_waiting_attempts(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Beyond the cap, a locked-out attempt is refused at once and its connection
    closed: the tarpit cannot be used to hold the server's connections."""
    await add_user(app, "alice")
    await lock_out(client, "alice")
    began = time.monotonic()
    answers = await asyncio.gather(
        *(sign_in(client, "alice", "guess-guess") for _ in range(tarpit.PER_ADDRESS + 3))
    )
    assert {a.status_code for a in answers} == {429}
    closed = [a for a in answers if a.headers.get("connection") == "close"]
    assert len(closed) == 3
    assert all("retry-after" in a.headers for a in answers)
    assert time.monotonic() - began >= tarpit.SECONDS  # the others waited
