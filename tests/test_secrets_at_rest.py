"""What the database keeps of a person's secrets (#9): passwords only as argon2id
hashes (at least 8 characters), and neither the session cookie's token nor an API token
in the clear, so a copy of the database signs nobody in."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from hxchat.auth.secrets import SESSION_COOKIE
from hxchat.config import Settings
from tests.helpers import PASSWORD, add_user, client_for, running_app, sign_in

NEW = "Ab3$efgh"  # 8 characters: the shortest password there may be


def _database_text(settings: Settings) -> str:
    """Every value of every table of the app's SQLite file, as one text."""
    path = settings.database_url.split(":///", 1)[1]
    with sqlite3.connect(path) as db:
        return "\n".join(db.iterdump())


async def test_the_database_keeps_only_hashes(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(auth="password")
    async with running_app(settings) as app, client_for(app) as alice:
        await add_user(app, "alice")
        assert (await sign_in(alice, "alice")).status_code == 303
        session = alice.cookies[SESSION_COOKIE]
        token = (await alice.post("/api/tokens", json={"name": "ci"})).json()["token"]
        seven = await alice.post(
            "/settings/password", data={"current_password": PASSWORD, "new_password": NEW[:7]}
        )
        assert seven.status_code == 422
        eight = await alice.post(
            "/settings/password", data={"current_password": PASSWORD, "new_password": NEW}
        )
        assert eight.status_code == 200
        assert (await alice.get("/api/me")).status_code == 200  # this session is kept

        stored = _database_text(settings)
        for secret in (PASSWORD, NEW, session, token):
            assert secret not in stored
        found = await app.state.accounts.store.user_by_name("alice")
        assert found is not None and str(found[1]).startswith("$argon2id$")
