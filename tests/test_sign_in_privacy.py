"""No answer to a sign-in tells whether a username exists (#9): a wrong password and an
unknown user get the same page, status and sentence, in about the same time (the real
argon2id cost, not the tests' cheap one), and both are locked out after 5 failures."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import httpx

from hxchat.config import Settings
from tests import html_tree
from tests.helpers import add_user, client_for, running_app, sign_in


def _shown(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, html_tree.parse(response.text).find(role="alert").text


async def _seconds(client: httpx.AsyncClient, name: str) -> float:
    started = time.perf_counter()
    assert (await sign_in(client, name, "not the password")).status_code == 401
    return time.perf_counter() - started


async def test_a_wrong_password_and_an_unknown_user_look_alike(
    make_settings: Callable[..., Settings],
) -> None:
    async with running_app(make_settings(auth="password")) as app, client_for(app) as client:
        await add_user(app, "alice")
        wrong = await sign_in(client, "alice", "not the password")
        unknown = await sign_in(client, "nobody", "not the password")
        assert _shown(wrong) == _shown(unknown) == (401, "Wrong username or password.")

        # Timed apart from the lockout's count (5 per name): 2 more tries of each name.
        known = statistics.median([await _seconds(client, "alice") for _ in range(2)])
        ghost = statistics.median([await _seconds(client, "nobody") for _ in range(2)])
        assert ghost > 0.3 * known, (ghost, known)  # the unknown name's hash is checked too

        for name in ("alice", "nobody"):  # the 4th and 5th failures lock either name
            for _ in range(2):
                await sign_in(client, name, "not the password")
        locked = [_shown(await sign_in(client, name)) for name in ("alice", "nobody")]
        assert locked[0] == locked[1] and locked[0][0] == 429
