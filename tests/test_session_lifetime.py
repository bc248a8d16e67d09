"""How long a sign-in lasts (#9): `HXCHAT_SESSION_DAYS` without use. The server counts
from the session's last use, and every page visit sends the cookie again with a fresh
`Max-Age`, so someone who comes back every day is never signed out; a session left
unused that long is over."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from hxchat.auth.secrets import SESSION_COOKIE, digest
from hxchat.config import Settings
from hxchat.store.tables import sessions, utcnow
from tests.helpers import (
    add_user,
    cheap_password_hashing,
    client_for,
    eventually,
    running_app,
    sign_in,
)

DAYS = 2


@pytest.fixture(autouse=True)
def _cheap_hashing() -> Iterator[None]:
    with cheap_password_hashing():
        yield


def _session_cookie(response: httpx.Response) -> str | None:
    found = [c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)]
    return found[0] if found else None


async def _last_seen_days_ago(app: FastAPI, key: str, days: float) -> None:
    def set_it(conn: Connection) -> None:
        when = utcnow() - timedelta(days=days)
        conn.execute(update(sessions).where(sessions.c.id == key).values(last_seen_at=when))

    await app.state.store.run(True, set_it)


async def _days_since_use(app: FastAPI, key: str) -> float:
    def read(conn: Connection) -> float:
        seen = conn.scalar(select(sessions.c.last_seen_at).where(sessions.c.id == key))
        assert seen is not None
        return float((utcnow() - seen).total_seconds() / 86_400)

    return float(await app.state.store.run(False, read))


async def _me(client: httpx.AsyncClient, status: int) -> None:
    assert (await client.get("/api/me")).status_code == status


async def test_a_page_visit_renews_the_cookie_and_an_unused_session_ends(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(auth="password", session_days=DAYS)
    async with running_app(settings) as app, client_for(app) as alice:
        await add_user(app, "alice")
        signed = _session_cookie(await sign_in(alice, "alice"))
        assert signed is not None and f"Max-Age={DAYS * 86_400}" in signed
        secret = alice.cookies[SESSION_COOKIE]

        page = await alice.get("/")
        assert _session_cookie(page) == signed  # the same token, its lifetime from now
        assert page.headers["cache-control"] == "private"  # never in a shared cache
        assert _session_cookie(await alice.get("/settings")) == signed
        assert _session_cookie(await alice.get("/api/me")) is None  # not for programs

        # Used a moment before its lifetime ran out: still signed in, and counted anew.
        key = digest(secret)
        await _last_seen_days_ago(app, key, DAYS - 0.01)

        async def used_now() -> None:  # once this worker's cache asks the store again
            await _me(alice, 200)
            assert await _days_since_use(app, key) < 0.01

        await eventually(used_now, within=3)
        # Left unused for longer than that: signed out.
        await _last_seen_days_ago(app, key, DAYS + 0.01)
        await eventually(lambda: _me(alice, 401), within=3)
        page = await alice.get("/")
        assert (page.status_code, page.headers["location"]) == (303, "/login?next=%2F")
        assert _session_cookie(page) is None
