"""Accounts on two `hxchat serve` workers sharing PostgreSQL and Redis (password mode):
a sign-out, a disabled user or a revoked token on one worker ends access on the other
within a second (each worker checks a sign-in against the database at least once a
second), and the message rate limit is one count across both (Redis)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.e2e.cluster import shared_environment, workers
from tests.helpers import eventually
from tests.servers import Server, add_account

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

REDIS_DB = 10
PASSWORD = "two workers' password"
RATE = 6
WITHIN = 1.0  # what the accounts promise
SLACK = 1.0  # a loaded shared machine: scheduling, the poll below


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    workdir = tmp_path_factory.mktemp("accounts-workers")
    with shared_environment(workdir, REDIS_DB, 0) as env:
        env = {
            **env,
            "HXCHAT_AUTH": "password",
            "HXCHAT_RATE_LIMIT": f"{RATE}/minute",
            "HXCHAT_MAX_ANSWERS_PER_USER": "50",
        }
        for name in ("alice", "bob", "carol", "dave"):
            add_account(workdir, env, name, PASSWORD)
        add_account(workdir, env, "root", PASSWORD, "--admin")
        with workers(workdir, [env, env]) as servers:
            yield servers


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def sign_in(http: httpx.AsyncClient, worker: Server, name: str) -> dict[str, str]:
    answer = await http.post(
        f"{worker.url}/login", data={"username": name, "password": PASSWORD, "next": "/"}
    )
    assert answer.status_code == 303, answer.text
    cookie = answer.cookies["hxchat_login"]
    http.cookies.clear()
    return {"Cookie": f"hxchat_login={cookie}"}


async def ended_within(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> float:
    """Seconds until `url` answers 401 (polled every 50 ms)."""
    began = time.monotonic()

    async def refused() -> None:
        answer = await http.get(url, headers=headers)
        http.cookies.clear()
        assert answer.status_code == 401, answer.status_code

    await eventually(refused, within=WITHIN + SLACK, interval=0.05)
    return time.monotonic() - began


async def test_a_sign_out_on_one_worker_ends_the_session_on_the_other(
    cluster: list[Server], http: httpx.AsyncClient
) -> None:
    a, b = cluster
    alice = await sign_in(http, a, "alice")
    assert (await http.get(f"{b.url}/api/me", headers=alice)).status_code == 200
    out = await http.post(f"{a.url}/logout", headers=alice)
    assert out.status_code == 303
    took = await ended_within(http, f"{b.url}/api/me", alice)
    print(f"sign-out seen by the other worker after {took:.2f} s")


async def test_a_revoked_token_stops_on_the_other_worker(
    cluster: list[Server], http: httpx.AsyncClient
) -> None:
    a, b = cluster
    bob = await sign_in(http, a, "bob")
    made = (await http.post(f"{a.url}/api/tokens", json={"name": "x"}, headers=bob)).json()
    bearer = {"Authorization": f"Bearer {made['token']}"}
    assert (await http.get(f"{b.url}/api/me", headers=bearer)).status_code == 200
    gone = await http.delete(f"{a.url}/api/tokens/{made['id']}", headers=bob)
    assert gone.status_code == 204
    took = await ended_within(http, f"{b.url}/api/me", bearer)
    print(f"revoked token refused by the other worker after {took:.2f} s")


async def test_a_user_disabled_on_one_worker_is_out_on_the_other(
    cluster: list[Server], http: httpx.AsyncClient
) -> None:
    a, b = cluster
    carol = await sign_in(http, b, "carol")
    token = (await http.post(f"{b.url}/api/tokens", json={"name": "x"}, headers=carol)).json()
    bearer = {"Authorization": f"Bearer {token['token']}"}
    carol_id = (await http.get(f"{b.url}/api/me", headers=carol)).json()["id"]
    assert (await http.get(f"{b.url}/api/me", headers=bearer)).status_code == 200
    root = await sign_in(http, a, "root")
    done = await http.post(f"{a.url}/admin/users/{carol_id}/disable", headers=root)
    assert done.status_code == 303, done.text
    took = await ended_within(http, f"{b.url}/api/me", carol)
    took_token = await ended_within(http, f"{b.url}/api/me", bearer)
    print(f"disabled user out on the other worker after {took:.2f} s (token {took_token:.2f})")
    admin = await http.get(f"{b.url}/admin", headers=root)
    assert admin.status_code == 200 and "disabled" in admin.text


async def test_the_rate_limit_is_one_count_across_workers(
    cluster: list[Server], http: httpx.AsyncClient
) -> None:
    a, b = cluster
    dave = await sign_in(http, a, "dave")
    statuses = []
    for i in range(RATE + 2):
        worker = (a, b)[i % 2]
        made = await http.post(f"{worker.url}/api/conversations", headers=dave)
        assert made.status_code == 201
        sent = await http.post(
            f"{worker.url}/api/conversations/{made.json()['id']}/messages",
            json={"content": f"message {i}"},
            headers=dave,
        )
        statuses.append(sent.status_code)
        if sent.status_code == 429:
            assert int(sent.headers["retry-after"]) >= 1
            assert "too fast" in sent.json()["detail"]
    assert statuses == [202] * RATE + [429, 429], statuses
